package flow

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSessionID: every value of one session names the same id, another
// session another, and a value of another shape none.
func TestSessionID(t *testing.T) {
	v1, h, err := newHandle()
	require.NoError(t, err)
	v2, _, err := newHandleFor(h.id)
	require.NoError(t, err)
	other, _, err := newHandle()
	require.NoError(t, err)
	id1, ok1 := SessionID(v1)
	id2, ok2 := SessionID(v2)
	id3, ok3 := SessionID(other)
	require.True(t, ok1 && ok2 && ok3)
	require.Equal(t, h.id, id1)
	require.Equal(t, id1, id2)
	require.NotEqual(t, id1, id3)
	for _, bad := range []string{"", "x", v1 + "A", v1[:len(v1)-1] + "!"} {
		_, ok := SessionID(bad)
		require.False(t, ok, "%q", bad)
	}
}
