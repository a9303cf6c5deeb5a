// Package backendtest runs loopback HTTP, HTTPS and TCP backends whose
// health can be switched at run time: the status code to return, hanging,
// answering slowly, resetting or closing the connection, sending a huge, a
// trickling or an endless body, or redirecting to itself. HTTPS backends
// present certificates of a throwaway CA, or a given (bad) certificate.
// TCP listeners close, reset or silently hold the connections they accept. Each backend listens on its own 127.0.0.X address (a group shares one
// port where possible) and counts the requests it received, with the Host
// header, TLS server name and path of each.
//
// It serves tests, benchmarks and demos; constructors return errors instead
// of taking a testing.TB. All methods are safe for concurrent use.
package backendtest
