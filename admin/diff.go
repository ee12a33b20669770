package admin

import (
	"fmt"
	"strings"
)

// lineDiff is a unified-style diff of two texts (lines prefixed "-", "+"
// or " ", with @@ hunks of 2 lines of context), computed as a longest
// common subsequence. Policy documents are a few hundred lines, so the
// quadratic table is small; past maxDiffCells (once the common head and
// tail are trimmed) it gives up and shows both sides whole: the diffs of
// a version are computed on every read of it, which the read role may
// repeat at will, so each must cost little memory.
func lineDiff(a, b string) string {
	if a == b {
		return ""
	}
	x, y := splitLines(a), splitLines(b)
	// Trim the common head and tail: most edits touch a few lines.
	pre := 0
	for pre < len(x) && pre < len(y) && x[pre] == y[pre] {
		pre++
	}
	suf := 0
	for suf < len(x)-pre && suf < len(y)-pre && x[len(x)-1-suf] == y[len(y)-1-suf] {
		suf++
	}
	mx, my := x[pre:len(x)-suf], y[pre:len(y)-suf]
	var ops []diffOp
	for i := 0; i < pre; i++ {
		ops = append(ops, diffOp{' ', x[i]})
	}
	if (len(mx)+1)*(len(my)+1) > maxDiffCells {
		for _, l := range mx {
			ops = append(ops, diffOp{'-', l})
		}
		for _, l := range my {
			ops = append(ops, diffOp{'+', l})
		}
	} else {
		ops = append(ops, lcsOps(mx, my)...)
	}
	for i := len(x) - suf; i < len(x); i++ {
		ops = append(ops, diffOp{' ', x[i]})
	}
	return hunks(ops, 2)
}

// maxDiffCells bounds the LCS table: 1M int32 cells, 4 MiB.
const maxDiffCells = 1 << 20

type diffOp struct {
	kind byte
	line string
}

func splitLines(s string) []string {
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func lcsOps(x, y []string) []diffOp {
	n, m := len(x), len(y)
	t := make([][]int32, n+1)
	for i := range t {
		t[i] = make([]int32, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if x[i] == y[j] {
				t[i][j] = t[i+1][j+1] + 1
			} else {
				t[i][j] = max(t[i+1][j], t[i][j+1])
			}
		}
	}
	var ops []diffOp
	i, j := 0, 0
	for i < n && j < m {
		switch {
		case x[i] == y[j]:
			ops = append(ops, diffOp{' ', x[i]})
			i++
			j++
		case t[i+1][j] >= t[i][j+1]:
			ops = append(ops, diffOp{'-', x[i]})
			i++
		default:
			ops = append(ops, diffOp{'+', y[j]})
			j++
		}
	}
	for ; i < n; i++ {
		ops = append(ops, diffOp{'-', x[i]})
	}
	for ; j < m; j++ {
		ops = append(ops, diffOp{'+', y[j]})
	}
	return ops
}

// hunks keeps the changed lines with ctx lines of context around them.
func hunks(ops []diffOp, ctx int) string {
	keep := make([]bool, len(ops))
	for i, o := range ops {
		if o.kind == ' ' {
			continue
		}
		for k := max(0, i-ctx); k <= min(len(ops)-1, i+ctx); k++ {
			keep[k] = true
		}
	}
	var b strings.Builder
	oldLine, newLine := 1, 1
	in := false
	for i, o := range ops {
		if keep[i] && !in {
			fmt.Fprintf(&b, "@@ -%d +%d @@\n", oldLine, newLine)
			in = true
		}
		if !keep[i] {
			in = false
		} else {
			b.WriteByte(o.kind)
			b.WriteString(o.line)
			b.WriteByte('\n')
		}
		switch o.kind {
		case ' ':
			oldLine++
			newLine++
		case '-':
			oldLine++
		case '+':
			newLine++
		}
	}
	return b.String()
}
