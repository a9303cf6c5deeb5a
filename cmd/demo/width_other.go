//go:build !(linux || darwin)

package main

import "os"

// ttyColumns is 0 where the terminal's width cannot be asked for.
func ttyColumns(*os.File) int { return 0 }
