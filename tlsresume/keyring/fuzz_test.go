package keyring

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"time"
)

// fuzzKEK is a fixed key-encryption key: the ring fuzz targets are
// deterministic, and an attacker who can write storage does not know it.
var fuzzKEK = func() *KEK {
	k, err := newKEK(bytes.Repeat([]byte{7}, KEKSize))
	if err != nil {
		panic(err)
	}
	return k
}()

// fuzzRingSeed is a valid sealed ring to start from.
func fuzzRingSeed(f *testing.F) []byte {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	doc := &Document{
		Version: 3, Updated: now, Rotations: 2,
		Keys: []Key{
			{ID: 1, Secret: bytes.Repeat([]byte{1}, TicketKeySize), Published: now, Activate: now},
			{ID: 2, Secret: bytes.Repeat([]byte{2}, TicketKeySize), Published: now, Activate: now.Add(time.Hour)},
		},
		InvalidatedBefore: now,
		Denied:            []DeniedCert{{SHA256: string(bytes.Repeat([]byte("ab"), 32)), Added: now}},
	}
	sealed, err := Seal(doc, fuzzKEK, "default")
	if err != nil {
		f.Fatal(err)
	}
	return sealed
}

// FuzzOpenRing feeds attacker-controlled bytes (what anyone with write
// access to the shared storage could put there) to Open with the
// fleet's real KEK: never a panic; an error is always errRingCorrupt or
// ErrOtherKEK; a document that opens is valid and seals again.
func FuzzOpenRing(f *testing.F) {
	f.Add(fuzzRingSeed(f))
	f.Add([]byte(`{"format":"caddy-tlsresume ring v1","kek_id":"` + fuzzKEK.ID() + `","nonce":"AAAAAAAAAAAAAAAA","sealed":"AAAA"}`))
	f.Add([]byte(`{"format":"caddy-tlsresume ring v1","kek_id":"` + fuzzKEK.ID() + `","nonce":null}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, data []byte) {
		doc, idx, err := Open(data, []*KEK{fuzzKEK}, "default")
		if err != nil {
			if !errors.Is(err, errRingCorrupt) && !errors.Is(err, ErrOtherKEK) {
				t.Fatalf("error %v is neither errRingCorrupt nor ErrOtherKEK", err)
			}
			if doc != nil || idx != -1 {
				t.Fatalf("error with a document (%v, %d)", doc, idx)
			}
			return
		}
		if idx != 0 {
			t.Fatalf("opened by KEK %d, only 0 exists", idx)
		}
		if err := doc.validate(); err != nil {
			t.Fatalf("opened an invalid document: %v", err)
		}
		if _, err := Seal(doc, fuzzKEK, "default"); err != nil {
			t.Fatalf("re-sealing an opened document: %v", err)
		}
	})
}

// FuzzRingDocumentJSON fuzzes the plaintext after decryption: any JSON
// sealed under the KEK (what a node holding the KEK, or a bug in one,
// could write) goes through Open. It must be refused as corrupt or
// open to a document that passes validation, whose keys are unique and
// sorted and whose secrets have the right size, and that survives a
// second round trip unchanged.
func FuzzRingDocumentJSON(f *testing.F) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	good, _ := json.Marshal(&Document{Version: 1, Updated: now, Keys: []Key{{ID: 9, Secret: make([]byte, TicketKeySize), Activate: now}}})
	f.Add(good)
	f.Add([]byte(`{"version":1,"keys":[{"id":1,"secret":"AAAA"}]}`))
	f.Add([]byte(`{"keys":[{"id":1,"secret":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","activate":"2026-01-02T00:00:00Z"},{"id":1,"secret":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","activate":"2026-01-01T00:00:00Z"}]}`))
	f.Add([]byte(`{"denied":[{"sha256":"x","added":"2026-01-01T00:00:00Z","not_after":"0001-01-01T00:00:00Z"}],"invalidated_before":"9999-12-31T23:59:59Z"}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, plain []byte) {
		nonce := make([]byte, fuzzKEK.aead.NonceSize())
		env := ringEnvelope{Format: ringFormat, KEKID: fuzzKEK.id, Nonce: nonce,
			Sealed: fuzzKEK.aead.Seal(nil, nonce, plain, ringAAD(fuzzKEK.id, "default"))}
		data, err := json.Marshal(env)
		if err != nil {
			t.Fatal(err)
		}
		doc, _, err := Open(data, []*KEK{fuzzKEK}, "default")
		if err != nil {
			if !errors.Is(err, errRingCorrupt) {
				t.Fatalf("sealed under the right KEK but: %v", err)
			}
			return
		}
		seen := map[uint32]bool{}
		for i, k := range doc.Keys {
			if len(k.Secret) != TicketKeySize || seen[k.ID] || (i > 0 && k.Activate.Before(doc.Keys[i-1].Activate)) {
				t.Fatalf("accepted key %d: id %08x, %d-byte secret, duplicate %v", i, k.ID, len(k.Secret), seen[k.ID])
			}
			seen[k.ID] = true
		}
		// A document that opened must survive seal → open unchanged:
		// nodes re-seal what they load when they rotate.
		again, err := Seal(doc, fuzzKEK, "default")
		if err != nil {
			t.Fatalf("re-sealing: %v", err)
		}
		doc2, _, err := Open(again, []*KEK{fuzzKEK}, "default")
		if err != nil {
			t.Fatalf("an accepted document does not open after re-sealing: %v", err)
		}
		a, _ := json.Marshal(doc)
		b, _ := json.Marshal(doc2)
		if !bytes.Equal(a, b) {
			t.Fatalf("round trip changed the document:\n%s\n%s", a, b)
		}
		// Another ring name must not open it.
		if _, _, err := Open(again, []*KEK{fuzzKEK}, "other"); !errors.Is(err, errRingCorrupt) {
			t.Fatalf("opened under another ring name: %v", err)
		}
	})
}
