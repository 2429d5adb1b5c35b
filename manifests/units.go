package manifests

import (
	"fmt"
	"math/big"
	"regexp"
	"strings"
)

// sizeNumberRE is the number of a size: whole or decimal ("512", "1.5").
var sizeNumberRE = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?$`)

// maxSizeDigits bounds the number of a size, so that nonsense is not
// computed with.
const maxSizeDigits = 32

// maxSizeMB is the largest size ParseSize returns (1 PB).
const maxSizeMB = 1 << 30

// sizeUnitsKB are the units of a size, in kilobytes.
var sizeUnitsKB = map[string]int64{
	"K": 1, "KB": 1,
	"M": 1 << 10, "MB": 1 << 10,
	"G": 1 << 20, "GB": 1 << 20,
	"T": 1 << 30, "TB": 1 << 30,
}

// ParseSize reads a Cloud Foundry size ("256M", "1G", "512MB", "1gb",
// "2048K", "1.5G"; case-insensitive, a space before the unit allowed) and
// returns it in megabytes. A decimal number is taken as Cloud Controller
// takes it ("1.5G" is 1536 MB); a size that is not a whole number of
// megabytes ("1025K", "0.3M") is rounded up to one. A number without
// unit is an error, as in Cloud Foundry, and so is a size that is not
// positive, a unit other than K, M, G or T (with or without B), and a
// size over 1 PB.
func ParseSize(s string) (int, error) {
	v := strings.ToUpper(strings.TrimSpace(s))
	if v == "" {
		return 0, fmt.Errorf("empty size; write e.g. 256M or 1G")
	}
	if strings.HasPrefix(v, "-") {
		return 0, fmt.Errorf("size %q must be more than zero", s)
	}
	unit := strings.TrimLeft(v, "0123456789.")
	num := strings.TrimSpace(v[:len(v)-len(unit)])
	unit = strings.TrimSpace(unit)
	if num == "" {
		return 0, fmt.Errorf("size %q has no number; write e.g. 256M or 1G", s)
	}
	if !sizeNumberRE.MatchString(num) {
		return 0, fmt.Errorf("size %q: %q is not a number; write e.g. 256M or 1.5G", s, num)
	}
	if len(num) > maxSizeDigits {
		return 0, fmt.Errorf("size %q has more than %d digits", s, maxSizeDigits)
	}
	kb, known := sizeUnitsKB[unit]
	switch {
	case unit == "":
		return 0, fmt.Errorf("size %q needs a unit (M or G), e.g. %sM", s, num)
	case !known:
		return 0, fmt.Errorf("size %q has an unknown unit %q (use K, M, G or T, optionally with B)", s, unit)
	}
	n, ok := new(big.Rat).SetString(num)
	if !ok {
		return 0, fmt.Errorf("size %q: %q is not a number; write e.g. 256M or 1.5G", s, num)
	}
	if n.Sign() <= 0 {
		return 0, fmt.Errorf("size %q must be more than zero", s)
	}
	// Megabytes = n × kb / 1024, rounded up.
	mb := n.Mul(n, big.NewRat(kb, 1<<10))
	whole := new(big.Int).Quo(mb.Num(), mb.Denom())
	if new(big.Rat).SetInt(whole).Cmp(mb) < 0 {
		whole.Add(whole, big.NewInt(1))
	}
	if !whole.IsInt64() || whole.Int64() > maxSizeMB {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return int(whole.Int64()), nil
}
