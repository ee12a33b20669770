package server

// PasswordChecks reports how many bcrypt comparisons s's password step
// has run: the lockout tests count an answer's work with it instead of
// timing it.
func PasswordChecks(s *Server) int64 { return s.password.Checks() }
