package proxy

import (
	"testing"
	"time"
)

func TestCircuit(t *testing.T) {
	c := circuits{failures: 3, open: 50 * time.Millisecond}
	steps := []struct {
		do       string
		wantOpen bool
	}{
		{"fail", false}, {"fail", false}, {"ok", false}, // a success resets the count
		{"fail", false}, {"fail", false}, {"fail", true}, // third in a row opens
		{"wait", false}, // half-open after the open period
		{"fail", true},  // still past the threshold: opens again at once
		{"ok", false},
	}
	for i, st := range steps {
		switch st.do {
		case "fail":
			c.failure("a")
		case "ok":
			c.success("a")
		case "wait":
			time.Sleep(60 * time.Millisecond)
		}
		if got := c.isOpen("a"); got != st.wantOpen {
			t.Fatalf("step %d (%s): open %v, want %v", i, st.do, got, st.wantOpen)
		}
	}
	if c.isOpen("never-seen") {
		t.Fatal("an unknown address is open")
	}
}
