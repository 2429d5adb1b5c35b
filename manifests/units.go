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
	num, unit, err := splitAmount(s, v, "size", "256M or 1G", "256M or 1.5G")
	if err != nil {
		return 0, err
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

// splitAmount splits v, s upper-cased and trimmed, into its number and
// unit, checking the number is one of at most maxSizeDigits digits; what
// names the amount in errors ("size"), which give eg and egDecimal as
// examples.
func splitAmount(s, v, what, eg, egDecimal string) (num, unit string, err error) {
	unit = strings.TrimLeft(v, "0123456789.")
	num = strings.TrimSpace(v[:len(v)-len(unit)])
	unit = strings.TrimSpace(unit)
	switch {
	case num == "":
		return "", "", fmt.Errorf("%s %q has no number; write e.g. %s", what, s, eg)
	case !sizeNumberRE.MatchString(num):
		return "", "", fmt.Errorf("%s %q: %q is not a number; write e.g. %s", what, s, num, egDecimal)
	case len(num) > maxSizeDigits:
		return "", "", fmt.Errorf("%s %q has more than %d digits", what, s, maxSizeDigits)
	}
	return num, unit, nil
}

// maxLogRate is the largest log rate ParseLogRate returns (1 TB/s).
const maxLogRate = 1 << 40

// rateUnitsB are the units of a log rate, in bytes.
var rateUnitsB = map[string]int64{
	"B": 1,
	"K": 1 << 10, "KB": 1 << 10,
	"M": 1 << 20, "MB": 1 << 20,
	"G": 1 << 30, "GB": 1 << 30,
	"T": 1 << 40, "TB": 1 << 40,
}

// ParseLogRate reads a Cloud Foundry log rate limit
// (log-rate-limit-per-second: "1K", "16K", "1M", "512B", "1.5K";
// case-insensitive, a space before the unit allowed) and returns it in
// bytes per second, rounded up to a whole byte; "-1" (or "unlimited")
// is no limit and returns -1. A number without unit is an error, as for
// sizes, and so is 0: Cloud Foundry takes it as "no logs at all", which
// driftless does not offer (an app that should log nothing can send its
// output to /dev/null); so is a rate over 1 TB/s.
func ParseLogRate(s string) (int64, error) {
	v := strings.ToUpper(strings.TrimSpace(s))
	switch v {
	case "":
		return 0, fmt.Errorf("empty log rate; write e.g. 1K or 1M, or -1 for no limit")
	case "-1", "UNLIMITED":
		return -1, nil
	}
	if strings.HasPrefix(v, "-") {
		return 0, fmt.Errorf("log rate %q must be more than zero, or -1 for no limit", s)
	}
	num, unit, err := splitAmount(s, v, "log rate", "1K or 1M", "16K or 1.5M")
	if err != nil {
		return 0, err
	}
	n, ok := new(big.Rat).SetString(num)
	if !ok {
		return 0, fmt.Errorf("log rate %q: %q is not a number; write e.g. 16K or 1.5M", s, num)
	}
	if n.Sign() == 0 {
		return 0, fmt.Errorf("log rate %q would drop every log line, which driftless does not offer: "+
			"give a limit such as 1K, or -1 for no limit (send the output to /dev/null to keep nothing)", s)
	}
	b, known := rateUnitsB[unit]
	switch {
	case unit == "":
		return 0, fmt.Errorf("log rate %q needs a unit (B, K, M or G), e.g. %sB or %sK", s, num, num)
	case !known:
		return 0, fmt.Errorf("log rate %q has an unknown unit %q (use B, K, M, G or T, optionally with B)", s, unit)
	}
	// Bytes = n × b, rounded up.
	bytes := n.Mul(n, big.NewRat(b, 1))
	whole := new(big.Int).Quo(bytes.Num(), bytes.Denom())
	if new(big.Rat).SetInt(whole).Cmp(bytes) < 0 {
		whole.Add(whole, big.NewInt(1))
	}
	if !whole.IsInt64() || whole.Int64() > maxLogRate {
		return 0, fmt.Errorf("log rate %q is too large (at most 1T)", s)
	}
	return whole.Int64(), nil
}
