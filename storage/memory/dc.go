package memory

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"time"

	"github.com/fedas/fedas/storage"
)

var _ storage.DCStore = (*Store)(nil)

// dcState holds the OpenID4VP transactions (storage.DCStore); its zero
// value is empty. Guarded by Store.mu; the janitor drops expired entries.
type dcState struct {
	txs  map[string]*dcTx
	reqs map[string]*dcReq
}

type dcTx struct {
	tx, result []byte
	exp        time.Time
}

type dcReq struct {
	txID  string
	taken bool
	exp   time.Time
}

func (d *dcState) sweep(now time.Time) {
	maps.DeleteFunc(d.txs, func(_ string, e *dcTx) bool { return !now.Before(e.exp) })
	maps.DeleteFunc(d.reqs, func(_ string, e *dcReq) bool { return !now.Before(e.exp) })
}

func (d *dcState) tx(id string, now time.Time) *dcTx {
	if e, ok := d.txs[id]; ok && now.Before(e.exp) {
		return e
	}
	return nil
}

func (d *dcState) req(id string, now time.Time) *dcReq {
	if e, ok := d.reqs[id]; ok && now.Before(e.exp) {
		return e
	}
	return nil
}

// CreateDC implements storage.DCStore.
func (s *Store) CreateDC(_ context.Context, txID, requestID string, tx []byte, ttl time.Duration) error {
	if txID == "" || len(tx) == 0 {
		return errors.New("memory: CreateDC: empty transaction id or record")
	}
	if err := checkTTL(ttl); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if e := s.dc.tx(txID, now); e != nil {
		if bytes.Equal(e.tx, tx) {
			return nil
		}
		return storage.ErrConflict
	}
	if requestID != "" && s.dc.req(requestID, now) != nil {
		return storage.ErrConflict
	}
	if s.dc.txs == nil {
		s.dc.txs, s.dc.reqs = map[string]*dcTx{}, map[string]*dcReq{}
	}
	exp := now.Add(ttl)
	s.dc.txs[txID] = &dcTx{tx: bytes.Clone(tx), exp: exp}
	if requestID != "" {
		s.dc.reqs[requestID] = &dcReq{txID: txID, exp: exp}
	}
	return nil
}

// DC implements storage.DCStore.
func (s *Store) DC(_ context.Context, txID string) (storage.DCRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.dc.tx(txID, s.now())
	if e == nil {
		return storage.DCRecord{}, storage.ErrNotFound
	}
	return storage.DCRecord{Tx: bytes.Clone(e.tx), Result: bytes.Clone(e.result)}, nil
}

// TakeDCRequest implements storage.DCStore.
func (s *Store) TakeDCRequest(_ context.Context, requestID string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.dc.req(requestID, s.now())
	switch {
	case e == nil:
		return "", storage.ErrNotFound
	case e.taken:
		return "", storage.ErrConflict
	}
	e.taken = true
	return e.txID, nil
}

// DCRequest implements storage.DCStore.
func (s *Store) DCRequest(_ context.Context, requestID string) (string, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.dc.req(requestID, s.now())
	if e == nil {
		return "", false, storage.ErrNotFound
	}
	return e.txID, e.taken, nil
}

// SetDCResult implements storage.DCStore.
func (s *Store) SetDCResult(_ context.Context, txID string, result []byte) error {
	if len(result) == 0 {
		return errors.New("memory: SetDCResult: empty result")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.dc.tx(txID, s.now())
	switch {
	case e == nil:
		return storage.ErrNotFound
	case e.result != nil:
		return storage.ErrConflict
	}
	e.result = bytes.Clone(result)
	return nil
}

// DeleteDC implements storage.DCStore.
func (s *Store) DeleteDC(_ context.Context, txID, requestID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.dc.txs, txID)
	if requestID != "" {
		delete(s.dc.reqs, requestID)
	}
	return nil
}
