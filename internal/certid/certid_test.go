package certid

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/big"
	"strings"
	"testing"
)

func TestParseSerial(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{"0", "0", ""},
		{"4099", "4099", ""},
		{"123456789012345678901234567890", "123456789012345678901234567890", ""},
		{"0x1F", "31", ""},
		{"0Xff", "255", ""},
		{"0x1003", "4099", ""},
		{"10:03", "4099", ""},
		{"01:a3:FF", "107519", ""},
		{"00", "0", ""},
		// Negative serials: non-conforming, but Go can parse them.
		{"-5", "-5", ""},
		{"-0x1f", "-31", ""},
		{"-10:03", "-4099", ""},
		{"-0", "0", ""},
		// Longer than RFC 5280's 20 octets, up to 64.
		{"0x" + strings.Repeat("ff", 21), new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 21*8), big.NewInt(1)).String(), ""},
		{"0x" + strings.Repeat("ff", 64), new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 64*8), big.NewInt(1)).String(), ""},
		{"0x" + strings.Repeat("0", 100) + "1", "1", ""},

		{"", "", "empty"},
		{"12ab", "", "neither decimal"},
		{"0x", "", "neither decimal"},
		{"0xg1", "", "neither decimal"},
		{"-", "", "neither decimal"},
		{"--5", "", "neither decimal"},
		{"-0x", "", "neither decimal"},
		{"+5", "", "neither decimal"},
		{" 5", "", "neither decimal"},
		{"5 ", "", "neither decimal"},
		{"0x-5", "", "neither decimal"},
		{"1_000", "", "neither decimal"},
		{"0x1_0", "", "neither decimal"},
		{"0b101", "", "neither decimal"},
		{"٣", "", "neither decimal"}, // a non-ASCII digit
		{"1::2", "", "two-digit hex groups"},
		{"123:4", "", "two-digit hex groups"},
		{"a:b", "", "two-digit hex groups"},
		{"1:02", "", "two-digit hex groups"},
		{"10:03:", "", "two-digit hex groups"},
		{":10", "", "two-digit hex groups"},
		{"0x10:03", "", "neither decimal"},
		{"-:", "", "two-digit hex groups"},
		{"0x1" + strings.Repeat("0", 128), "", "20 octets"},
		{strings.Repeat("9", 155), "", "20 octets"},
		{strings.Repeat("1", 201), "", "too long"},
	} {
		n, err := ParseSerial(tc.in)
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseSerial(%q) = %v, %v; want error %q", tc.in, n, err, tc.err)
			}
		case err != nil || n.String() != tc.want:
			t.Errorf("ParseSerial(%q) = %v, %v; want %s", tc.in, n, err, tc.want)
		}
	}
}

func TestParseFingerprint(t *testing.T) {
	want := strings.Repeat("0a", 32)
	for _, tc := range []struct{ in, want, err string }{
		{want, want, ""},
		{strings.ToUpper(want), want, ""},
		{strings.TrimSuffix(strings.Repeat("0A:", 32), ":"), want, ""},
		{strings.TrimSuffix(strings.Repeat("0a ", 32), " "), want, ""},
		{strings.TrimSuffix(strings.Repeat("0a: ", 32), ": "), want, ""},
		{"0" + strings.Repeat(":a0", 31) + ":a", want, ""}, // separators carry no meaning
		{":" + want + " ", want, ""},
		{"", "", "0 bytes"},
		{"0a", "", "1 bytes"},
		{"abcd", "", "64 hex digits"},
		{want + "0a", "", "33 bytes"},
		{"xyz", "", "not hex"},
		{strings.Repeat("zz", 32), "", "invalid byte"},
		{want[:63] + "\n", "", "invalid byte"},
		{want + "\n", "", "invalid byte"},
		{"0x" + want[2:], "", "invalid byte"},
		{strings.Repeat("aa:", 31) + "aaa", "", "two hex digits"},
		{strings.Repeat("0", 200), "", "too long"},
	} {
		got, err := ParseFingerprint(tc.in)
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseFingerprint(%q) = %v, %v; want error %q", tc.in, got, err, tc.err)
			}
		case err != nil || got.String() != tc.want:
			t.Errorf("ParseFingerprint(%q) = %v, %v; want %s", tc.in, got, err, tc.want)
		}
	}
}

func TestIssuerDigest(t *testing.T) {
	name := []byte("\x30\x0f\x31\x0d\x30\x0b\x06\x03\x55\x04\x03\x0c\x04test")
	sum := sha256.Sum256(name)
	if got, want := IssuerDigest(name), hex.EncodeToString(sum[:]); got != want {
		t.Errorf("IssuerDigest = %s; want %s", got, want)
	}
	if got := Of(name); got != Fingerprint(sum) {
		t.Errorf("Of = %v; want %x", got, sum)
	}
}

// serialSpellings returns n in every spelling ParseSerial accepts.
func serialSpellings(n *big.Int) []string {
	sign := ""
	if n.Sign() < 0 {
		sign = "-"
	}
	abs := new(big.Int).Abs(n)
	b := abs.Bytes()
	if len(b) == 0 {
		b = []byte{0}
	}
	groups := make([]string, len(b))
	for i, c := range b {
		groups[i] = fmt.Sprintf("%02X", c)
	}
	out := []string{
		n.String(),                 // decimal, the stored form
		fmt.Sprintf("%#x", n),      // -0x1f
		sign + "0X" + abs.Text(16), // upper-case prefix
	}
	// One group without a colon reads as decimal: a serial of one octet is
	// spelt with a leading zero group.
	if len(groups) == 1 {
		groups = append([]string{"00"}, groups...)
	}
	return append(out, sign+strings.Join(groups, ":"), // as OpenSSL prints
		strings.ToLower(sign+strings.Join(groups, ":")))
}

// FuzzSerialRoundTrip: every serial within the bound, positive or negative,
// parses back equal from each of its spellings.
func FuzzSerialRoundTrip(f *testing.F) {
	f.Add([]byte{0x10, 0x03}, false)
	f.Add([]byte{}, false)
	f.Add([]byte{0x80}, true)
	f.Add([]byte(strings.Repeat("\xff", 21)), false)
	f.Add([]byte(strings.Repeat("\xff", maxSerialOctets)), true)
	f.Fuzz(func(t *testing.T, mag []byte, neg bool) {
		if len(mag) > maxSerialOctets {
			mag = mag[:maxSerialOctets]
		}
		n := new(big.Int).SetBytes(mag)
		if neg {
			n.Neg(n)
		}
		for _, s := range serialSpellings(n) {
			got, err := ParseSerial(s)
			if err != nil || got.Cmp(n) != 0 {
				t.Fatalf("ParseSerial(%q) = %v, %v; want %v", s, got, err, n)
			}
		}
	})
}

// FuzzParseSerial: parsing never panics, and an accepted serial has a
// canonical decimal form that parses back equal, as do its other spellings.
func FuzzParseSerial(f *testing.F) {
	for _, s := range []string{"4099", "0x1003", "10:03", "-5", "a:b", "0x", "-", "", "1::2", "00:00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSerial(s)
		if err != nil {
			return
		}
		if n.BitLen() > maxSerialOctets*8 {
			t.Fatalf("ParseSerial(%q) = %v, beyond the bound", s, n)
		}
		for _, sp := range serialSpellings(n) {
			if got, err := ParseSerial(sp); err != nil || got.Cmp(n) != 0 {
				t.Fatalf("ParseSerial(%q) = %v; its spelling %q parses as %v, %v", s, n, sp, got, err)
			}
		}
	})
}

// FuzzFingerprintRoundTrip: every digest parses back equal from its usual
// spellings.
func FuzzFingerprintRoundTrip(f *testing.F) {
	f.Add([]byte(strings.Repeat("\xab", sha256.Size)))
	f.Fuzz(func(t *testing.T, b []byte) {
		var fp Fingerprint
		copy(fp[:], b)
		h := fp.String()
		var pairs []string
		for i := 0; i < len(h); i += 2 {
			pairs = append(pairs, h[i:i+2])
		}
		for _, s := range []string{
			h, strings.ToUpper(h),
			strings.ToUpper(strings.Join(pairs, ":")), // openssl x509 -fingerprint -sha256
			strings.Join(pairs, " "),
		} {
			if got, err := ParseFingerprint(s); err != nil || got != fp {
				t.Fatalf("ParseFingerprint(%q) = %v, %v; want %v", s, got, err, fp)
			}
		}
	})
}

// FuzzParseFingerprint: parsing never panics, and an accepted digest's
// canonical form parses back equal.
func FuzzParseFingerprint(f *testing.F) {
	f.Add(strings.Repeat("AB:", 31) + "AB")
	f.Add("xyz")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		fp, err := ParseFingerprint(s)
		if err != nil {
			return
		}
		if got, err := ParseFingerprint(fp.String()); err != nil || got != fp {
			t.Fatalf("ParseFingerprint(%q) = %v; its canonical form parses as %v, %v", s, fp, got, err)
		}
	})
}
