//go:build !unix

package testserver

// rawSocket needs syscalls the net package does not offer; elsewhere the
// closed-port and blackhole addresses are simply not provided.
type rawSocket struct{ addr string }

func newClosedPort() (*rawSocket, error) { return nil, errNoRawSockets }
func newBlackhole() (*rawSocket, error)  { return nil, errNoRawSockets }
func (s *rawSocket) close()              {}
