package manifests

import (
	"fmt"
	"strconv"
	"strings"
)

// ParseSize reads a Cloud Foundry size ("256M", "1G", "512MB", "1gb",
// "2048K"; case-insensitive, a space before the unit allowed) and returns
// it in megabytes, kilobytes rounded up. A number without unit is an
// error, as in Cloud Foundry, and so is a size that is not positive.
func ParseSize(s string) (int, error) {
	v := strings.ToUpper(strings.TrimSpace(s))
	if v == "" {
		return 0, fmt.Errorf("empty size; write e.g. 256M or 1G")
	}
	unit := strings.TrimLeft(v, "0123456789")
	num := strings.TrimSpace(v[:len(v)-len(unit)])
	unit = strings.TrimSpace(unit)
	if num == "" {
		return 0, fmt.Errorf("size %q has no number; write e.g. 256M or 1G", s)
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	var mb int64
	switch unit {
	case "K", "KB":
		mb = (n + 1023) / 1024
	case "M", "MB":
		mb = n
	case "G", "GB":
		mb = n * 1024
	case "T", "TB":
		mb = n * 1024 * 1024
	case "":
		return 0, fmt.Errorf("size %q needs a unit (M or G), e.g. %sM", s, num)
	default:
		return 0, fmt.Errorf("size %q has an unknown unit %q (use K, M, G or T, optionally with B)", s, unit)
	}
	if n <= 0 {
		return 0, fmt.Errorf("size %q must be more than zero", s)
	}
	if mb > 1<<30 {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return int(mb), nil
}
