// Package bench holds blockferry's benchmark drivers, seeded workload generator and peer-comparison tools.
package bench
