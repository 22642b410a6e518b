package ebsfake

import "net/http"

// routeRoot dispatches POST / to the EC2 query protocol or Storage Gateway JSON 1.1.
func (s *Server) routeRoot(r *http.Request, unknown route) route {
	return unknown
}
