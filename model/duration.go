package model

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// ParseDuration reads a duration written by people in a file: a Go
// duration ("72h", "90m") or a number of days ("3d", "30d"); it must be
// more than zero.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseFloat(days, 64)
		if err != nil || n <= 0 || n > math.MaxInt64/float64(24*time.Hour) {
			return 0, fmt.Errorf("%q is not a number of days", s)
		}
		return time.Duration(n * float64(24*time.Hour)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration (72h, 3d): %w", s, err)
	}
	if d <= 0 {
		return 0, fmt.Errorf("%q: a duration here is more than zero", s)
	}
	return d, nil
}
