package ebsfake

import (
	"net/http"
	"strings"
)

// route is a parsed request: the operation, the snapshot in its path and the handler.
type route struct {
	op     Op
	snap   string
	index  string
	direct bool // an EBS direct API call (subject to Throttle)
	handle func(http.ResponseWriter, *http.Request)
}

// route parses the path before dispatching on the method (§8).
func (s *Server) route(r *http.Request) route {
	p := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	m := r.Method
	unknown := route{op: OpUnknown, handle: func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, newErr(ErrUnknownOperation, "", "No operation matches %s %s", r.Method, r.URL.Path))
	}}
	switch {
	case len(p) == 1 && p[0] == "" && m == http.MethodPost:
		return s.routeRoot(r, unknown)
	case len(p) == 1 && p[0] == "snapshots" && m == http.MethodPost:
		return route{op: OpStartSnapshot, direct: true, handle: s.startSnapshot}
	case len(p) == 3 && p[0] == "snapshots" && p[1] == "completion" && m == http.MethodPost:
		rt := route{op: OpCompleteSnapshot, snap: p[2], direct: true}
		rt.handle = func(w http.ResponseWriter, r *http.Request) { s.completeSnapshot(w, r, rt.snap) }
		return rt
	case len(p) == 4 && p[0] == "snapshots" && p[2] == "blocks" && (m == http.MethodPut || m == http.MethodGet):
		rt := route{op: OpPutSnapshotBlock, snap: p[1], index: p[3], direct: true}
		if m == http.MethodGet {
			rt.op = OpGetSnapshotBlock
			rt.handle = func(w http.ResponseWriter, r *http.Request) { s.getSnapshotBlock(w, r, rt.snap, rt.index) }
		} else {
			rt.handle = func(w http.ResponseWriter, r *http.Request) { s.putSnapshotBlock(w, r, rt.snap, rt.index) }
		}
		return rt
	case len(p) == 3 && p[0] == "snapshots" && p[2] == "blocks" && m == http.MethodGet:
		rt := route{op: OpListSnapshotBlocks, snap: p[1], direct: true}
		rt.handle = func(w http.ResponseWriter, r *http.Request) { s.listSnapshotBlocks(w, r, rt.snap) }
		return rt
	case len(p) == 3 && p[0] == "snapshots" && p[2] == "changedblocks" && m == http.MethodGet:
		rt := route{op: OpListChangedBlocks, snap: p[1], direct: true}
		rt.handle = func(w http.ResponseWriter, r *http.Request) { s.listChangedBlocks(w, r, rt.snap) }
		return rt
	}
	return unknown
}
