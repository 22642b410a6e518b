package sink

const sysCopyFileRange = 285 // copy_file_range on linux/arm64
