package sessions

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// metadataProblem says why the JSON object b cannot be kept as a
// session's metadata, or returns "" when it can. Postgres' jsonb refuses
// text that is not UTF-8, the escape \u0000 and unpaired UTF-16 surrogate
// escapes, which encoding/json lets through; and it writes every number
// out in full (1e100000 is a hundred thousand digits in each answer that
// carries the session), so an exponent counts as the digits it stands for
// against MaxMetadataBytes.
func metadataProblem(b []byte) string {
	if !utf8.Valid(b) {
		return "must be valid UTF-8"
	}
	if !storableEscapes(b) {
		return `must not hold the escape \u0000 or an unpaired surrogate`
	}
	size := len(b)
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	for size <= MaxMetadataBytes {
		tok, err := dec.Token()
		if err != nil {
			break // the end; b is known to be a JSON object
		}
		if n, ok := tok.(json.Number); ok {
			size += exponentDigits(string(n))
		}
	}
	if size > MaxMetadataBytes {
		return "must be at most 4 KiB, with numbers counted as written out in full"
	}
	return ""
}

// storableEscapes reports whether the \u escapes of the JSON text b are
// ones jsonb accepts: not \u0000, and surrogates only in pairs. b must be
// valid JSON, where a backslash only occurs inside strings.
func storableEscapes(b []byte) bool {
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' {
			continue
		}
		i++ // the escaped character; a "\\" is skipped whole
		if i >= len(b) || b[i] != 'u' {
			continue
		}
		r, ok := hex4(b, i+1)
		i += 4
		switch {
		case !ok || r == 0:
			return false
		case r >= 0xD800 && r <= 0xDBFF: // a high surrogate needs a low one next
			if i+6 >= len(b) || b[i+1] != '\\' || b[i+2] != 'u' {
				return false
			}
			if lo, ok := hex4(b, i+3); !ok || lo < 0xDC00 || lo > 0xDFFF {
				return false
			}
			i += 6
		case r >= 0xDC00 && r <= 0xDFFF:
			return false
		}
	}
	return true
}

// hex4 reads the four hex digits at b[i:i+4].
func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	n, err := strconv.ParseUint(string(b[i:i+4]), 16, 16)
	return rune(n), err == nil
}

// exponentDigits is the magnitude of number n's exponent: how many digits
// longer writing it out makes it, at most.
func exponentDigits(n string) int {
	i := bytes.IndexAny([]byte(n), "eE")
	if i < 0 {
		return 0
	}
	e, err := strconv.ParseInt(n[i+1:], 10, 32)
	if err != nil { // out of range: far too long either way
		return MaxMetadataBytes + 1
	}
	if e < 0 {
		e = -e
	}
	return int(min(e, MaxMetadataBytes+1))
}
