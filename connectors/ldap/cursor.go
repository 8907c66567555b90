package ldap

import (
	"container/list"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	goldap "github.com/go-ldap/ldap/v3"
)

// A cursor is one listing's sorted snapshot on the server: a connection of
// its own on which a search carrying the Server Side Sort (RFC 2891) and
// Virtual List View (draft-ietf-ldapext-ldapv3-vlv) controls made the
// directory sort every account once. Later pages name the snapshot by the
// VLV context ID and say where to start by value, so each costs O(page).
// The snapshot lives as long as the connection (OpenLDAP's sssvlv frees it
// when the connection closes), hence one connection per cursor, closed when
// the listing ends, when it is evicted or idle, and in Client.Close.
type cursor struct {
	id      string
	conn    *goldap.Conn
	context []byte // VLV contextID of the snapshot; nil before the first page
	used    time.Time
	elem    *list.Element // in cursorStore.lru while idle
}

func newCursorID() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}

// cursorStore keeps the idle cursors between pages, at most max of them:
// storing one more closes the least recently used. Cursors idle longer than
// idle are closed by a timer, so an unused client does not hold snapshots
// (and the server's limited sort slots) forever. A cursor being used is
// taken out of the store, so two calls never share one; a call that finds
// its cursor missing opens another and positions it by value.
type cursorStore struct {
	max  int
	idle time.Duration

	mu     sync.Mutex
	byID   map[string]*cursor
	lru    *list.List // front = most recently used
	timer  *time.Timer
	closed bool
}

func newCursorStore(max int, idle time.Duration) *cursorStore {
	return &cursorStore{max: max, idle: idle, byID: map[string]*cursor{}, lru: list.New()}
}

// take removes and returns the idle cursor id, or nil.
func (s *cursorStore) take(id string) *cursor {
	if id == "" {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.byID[id]
	if cur == nil {
		return nil
	}
	s.remove(cur)
	return cur
}

// put keeps cur for the next page, evicting the least recently used cursor
// when full. After close, put closes cur instead.
func (s *cursorStore) put(cur *cursor, now time.Time) {
	var evicted []*cursor
	s.mu.Lock()
	if s.closed || s.max <= 0 {
		s.mu.Unlock()
		cur.close()
		return
	}
	for len(s.byID) >= s.max {
		oldest := s.lru.Back().Value.(*cursor)
		s.remove(oldest)
		evicted = append(evicted, oldest)
	}
	cur.used = now
	cur.elem = s.lru.PushFront(cur)
	s.byID[cur.id] = cur
	if s.timer == nil {
		s.timer = time.AfterFunc(s.idle, s.sweep)
	}
	s.mu.Unlock()
	for _, c := range evicted {
		c.close()
	}
}

func (s *cursorStore) remove(cur *cursor) {
	s.lru.Remove(cur.elem)
	cur.elem = nil
	delete(s.byID, cur.id)
}

// sweep closes cursors idle for longer than s.idle and re-arms the timer
// for the next one to expire.
func (s *cursorStore) sweep() {
	var expired []*cursor
	s.mu.Lock()
	now := time.Now()
	for e := s.lru.Back(); e != nil; {
		cur := e.Value.(*cursor)
		if now.Sub(cur.used) < s.idle {
			break
		}
		e = e.Prev()
		s.remove(cur)
		expired = append(expired, cur)
	}
	s.timer = nil
	if back := s.lru.Back(); back != nil && !s.closed {
		s.timer = time.AfterFunc(s.idle-now.Sub(back.Value.(*cursor).used), s.sweep)
	}
	s.mu.Unlock()
	for _, c := range expired {
		c.close()
	}
}

// len reports how many idle cursors are kept.
func (s *cursorStore) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.byID)
}

// close closes every idle cursor; cursors in use are closed when put back.
func (s *cursorStore) close() {
	s.mu.Lock()
	s.closed = true
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	all := make([]*cursor, 0, len(s.byID))
	for _, cur := range s.byID {
		all = append(all, cur)
	}
	for _, cur := range all {
		s.remove(cur)
	}
	s.mu.Unlock()
	for _, c := range all {
		c.close()
	}
}

func (cur *cursor) close() { _ = cur.conn.Close() }

// OIDs of the controls a sorted listing uses.
const (
	oidSortRequest  = goldap.ControlTypeServerSideSorting // RFC 2891
	oidSortResponse = goldap.ControlTypeServerSideSortingResult
	oidVLVRequest   = goldap.ControlTypeVLVRequest // draft-ietf-ldapext-ldapv3-vlv-09
	oidVLVResponse  = goldap.ControlTypeVLVResponse
)

// vlvTarget says where a VLV window starts: at a 1-based offset into the
// sorted snapshot, or at the first entry whose sort key is at least value.
type vlvTarget struct {
	offset int
	value  string
}

// vlvRequest encodes the VLV request control asking for the target entry
// and after more, in the snapshot named by context (nil for a new one):
//
//	VirtualListViewRequest ::= SEQUENCE {
//	    beforeCount INTEGER, afterCount INTEGER,
//	    target CHOICE {
//	        byOffset [0] SEQUENCE { offset INTEGER, contentCount INTEGER },
//	        greaterThanOrEqual [1] AssertionValue },
//	    contextID OCTET STRING OPTIONAL }
//
// It is critical: a server that ignored it would answer a sorted search
// with every entry at once.
func vlvRequest(target vlvTarget, after int, context []byte) goldap.Control {
	seq := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "VirtualListViewRequest")
	seq.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, int64(0), "beforeCount"))
	seq.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, int64(after), "afterCount"))
	if target.value == "" {
		byOffset := ber.Encode(ber.ClassContext, ber.TypeConstructed, 0, nil, "byOffset")
		byOffset.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, int64(target.offset), "offset"))
		// contentCount 0: the offset is absolute, not scaled.
		byOffset.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, int64(0), "contentCount"))
		seq.AppendChild(byOffset)
	} else {
		seq.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 1, target.value, "greaterThanOrEqual"))
	}
	if context != nil {
		seq.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, string(context), "contextID"))
	}
	return goldap.NewControlString(oidVLVRequest, true, string(seq.Bytes()))
}

// sortRequest is the non-critical Server Side Sort control on uid with
// caseIgnoreOrderingMatch; whether the server sorted is read from its
// response control.
func sortRequest() goldap.Control {
	return goldap.NewControlServerSideSortingWithSortKeys([]*goldap.SortKey{
		{AttributeType: attrUID, MatchingRule: matchCaseIgnoreOrdering},
	})
}

// vlvResponse is the decoded VirtualListViewResponse: target is the
// 1-based position of the first entry of the window (count+1 when no entry
// is at least the asserted value), count the snapshot's size.
type vlvResponse struct {
	target, count int
	result        int64
	context       []byte
}

// errNoServerSort means the directory did not sort: it lacks server-side
// sorting or VLV, refused them, or has no sort slot free (LDAP busy).
var errNoServerSort = errors.New("the directory did not sort the listing")

// sortedResponse checks the controls of a sorted VLV search's result and
// decodes the VLV response. A missing VLV response, a failed sort or a VLV
// error mean the server did not sort (errNoServerSort).
func sortedResponse(controls []goldap.Control) (vlvResponse, error) {
	if c, ok := goldap.FindControl(controls, oidSortResponse).(*goldap.ControlServerSideSortingResult); ok &&
		c.Result != goldap.ControlServerSideSortingCodeSuccess {
		return vlvResponse{}, fmt.Errorf("%w: sort result %d", errNoServerSort, c.Result)
	}
	c, ok := goldap.FindControl(controls, oidVLVResponse).(*goldap.ControlString)
	if !ok {
		return vlvResponse{}, fmt.Errorf("%w: no virtual list view response", errNoServerSort)
	}
	r, err := decodeVLVResponse([]byte(c.ControlValue))
	if err != nil {
		return vlvResponse{}, err
	}
	if r.result != 0 {
		return vlvResponse{}, fmt.Errorf("%w: virtual list view result %d", errNoServerSort, r.result)
	}
	return r, nil
}

// decodeVLVResponse parses
//
//	VirtualListViewResponse ::= SEQUENCE {
//	    targetPosition INTEGER, contentCount INTEGER,
//	    virtualListViewResult ENUMERATED, contextID OCTET STRING OPTIONAL }
func decodeVLVResponse(data []byte) (vlvResponse, error) {
	p, err := ber.DecodePacketErr(data)
	if err != nil {
		return vlvResponse{}, fmt.Errorf("%w: malformed virtual list view response: %v", errNoServerSort, err)
	}
	if len(p.Children) < 3 {
		return vlvResponse{}, fmt.Errorf("%w: malformed virtual list view response", errNoServerSort)
	}
	var ints [3]int64
	for i := range ints {
		v, ok := p.Children[i].Value.(int64)
		if !ok || v < 0 {
			return vlvResponse{}, fmt.Errorf("%w: malformed virtual list view response", errNoServerSort)
		}
		ints[i] = v
	}
	r := vlvResponse{target: int(ints[0]), count: int(ints[1]), result: ints[2]}
	if len(p.Children) > 3 && p.Children[3].Data != nil {
		r.context = append([]byte(nil), p.Children[3].Data.Bytes()...)
	}
	return r, nil
}

// sortUnavailable reports result codes with which a directory refuses a
// sorted VLV search it cannot serve, rather than failing: no such control
// (unavailableCriticalExtension), no ordering rule (inappropriateMatching),
// unknown sort attribute (noSuchAttribute), sort slots exhausted (busy),
// unwilling, limits (adminLimitExceeded, Active Directory's temp table),
// sortControlMissing and the VLV error.
func sortUnavailable(err error) bool {
	return hasCode(err,
		goldap.LDAPResultUnavailableCriticalExtension, goldap.LDAPResultInappropriateMatching,
		goldap.LDAPResultNoSuchAttribute, goldap.LDAPResultBusy, goldap.LDAPResultUnwillingToPerform,
		goldap.LDAPResultAdminLimitExceeded, goldap.LDAPResultSortControlMissing, goldap.LDAPResultVirtualListViewErrorOrControlError,
	)
}
