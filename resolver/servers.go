package resolver

import (
	"log/slog"
	"net"

	"github.com/miekg/dns"
)

// fallbackServer is used when the resolver configuration file names none.
const fallbackServer = "127.0.0.1:53"

// systemServers returns the nameservers of the resolv.conf file at path as
// "ip:port", or fallbackServer, with a warning logged, when the file is
// missing, unreadable or names no server.
func systemServers(path string, log *slog.Logger) []string {
	conf, err := dns.ClientConfigFromFile(path)
	if err != nil {
		log.Warn("resolver: no resolver configuration; using the fallback server",
			"file", path, "server", fallbackServer, "err", err)
		return []string{fallbackServer}
	}
	servers := make([]string, 0, len(conf.Servers))
	for _, s := range conf.Servers {
		servers = append(servers, net.JoinHostPort(s, conf.Port))
	}
	if len(servers) == 0 {
		log.Warn("resolver: resolver configuration names no server; using the fallback server",
			"file", path, "server", fallbackServer)
		return []string{fallbackServer}
	}
	return servers
}
