// Cross-check helper for tests/unit/test_cosignature.py: cosign or verify with
// github.com/transparency-dev/formats/note (checked with commit 404c0d5) and golang.org/x/mod/sumdb/note.
package main

import (
	"fmt"
	"os"
	"strings"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

func main() {
	data, err := os.ReadFile(os.Args[3])
	if err != nil {
		panic(err)
	}
	switch os.Args[1] {
	case "sign": // sign <skey> <body file>: print the signed note
		s, err := fnote.NewSignerForCosignatureV1(os.Args[2])
		if err != nil {
			panic(err)
		}
		out, err := note.Sign(&note.Note{Text: string(data)}, s)
		if err != nil {
			panic(err)
		}
		fmt.Print(string(out))
	case "verify": // verify <vkey> <note file>: print the verified cosignature's timestamp
		v, err := fnote.NewVerifierForCosignatureV1(os.Args[2])
		if err != nil {
			panic(err)
		}
		n, err := note.Open(data, note.VerifierList(v))
		if err != nil {
			fmt.Println("REFUSED", err)
			os.Exit(1)
		}
		t, err := fnote.CoSigV1Timestamp(n.Sigs[0])
		if err != nil {
			panic(err)
		}
		fmt.Println("OK", t.Unix(), strings.TrimSpace(n.Sigs[0].Name))
	}
}
