package sink

const sysCopyFileRange = 326 // copy_file_range on linux/amd64
