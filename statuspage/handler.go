package statuspage

import (
	"bytes"
	"cmp"
	"encoding/json"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-go/vigil"
)

// contentSecurityPolicy allows the page nothing but its inline style and
// data: images (an empty icon, so that no browser asks for /favicon.ico):
// no script, no frame, no form, no request anywhere.
const contentSecurityPolicy = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Handler serves the status page of some upstreams: HTML for people, JSON
// for tools (see ServeHTTP). Create it with New; it is safe for concurrent
// use.
type Handler struct {
	ups   Upstreams
	cfg   Config
	roles Roles
	log   *slog.Logger
}

// New checks cfg and returns a Handler showing the upstreams ups holds at
// each request (a *vigil.Client, a *vigilgrpc.Builder, or Of(upstreams)).
// It starts nothing. Invalid configuration, or a nil ups (reported as
// Field "Upstreams"), gives a *ConfigError.
func New(ups Upstreams, cfg Config, opts ...Option) (*Handler, error) {
	if ups == nil {
		return nil, &ConfigError{Field: "Upstreams", Reason: "nil: nothing to show"}
	}
	c, err := normalize(cfg)
	if err != nil {
		return nil, err
	}
	o := options{log: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		opt(&o)
	}
	return &Handler{
		ups:   ups,
		cfg:   c,
		roles: o.roles,
		log:   o.log,
	}, nil
}

// Page returns what the page shows now. It reads the upstreams and
// changes none of them.
func (h *Handler) Page() Page {
	now := time.Now()
	ups := h.pick(h.ups.Upstreams())
	p := Page{Schema: Schema, GeneratedAt: now.UTC(), Upstreams: make([]Upstream, 0, len(ups.shown))}
	p.UpstreamsOmitted = ups.omitted
	for _, u := range ups.shown {
		up := h.upstreamOf(u)
		up.Remembered, up.RememberedTotal = rememberedOf(u, h.cfg.MaxRemembered, h.cfg.MaxChanges)
		p.Upstreams = append(p.Upstreams, up)
	}
	return p
}

// picked are the upstreams a page shows, by name, and how many it leaves
// out.
type picked struct {
	shown   []*vigil.Upstream
	omitted int
}

// pick returns at most cfg.MaxUpstreams of all, those in trouble first,
// sorted by name.
func (h *Handler) pick(all []*vigil.Upstream) picked {
	ups := slices.DeleteFunc(slices.Clone(all), func(u *vigil.Upstream) bool { return u == nil })
	byName := func(a, b *vigil.Upstream) int { return cmp.Compare(a.String(), b.String()) }
	slices.SortStableFunc(ups, byName)
	n := len(ups)
	if n > h.cfg.MaxUpstreams {
		bad := make(map[*vigil.Upstream]bool)
		for _, u := range ups {
			bad[u] = troubled(u)
		}
		slices.SortStableFunc(ups, func(a, b *vigil.Upstream) int {
			switch {
			case bad[a] == bad[b]:
				return 0
			case bad[a]:
				return -1
			}
			return 1
		})
		ups = ups[:h.cfg.MaxUpstreams]
		slices.SortStableFunc(ups, byName)
	}
	return picked{shown: ups, omitted: n - len(ups)}
}

// ServeHTTP serves the page to GET and HEAD requests, and answers others
// with 405 Method Not Allowed: it changes nothing. The page is JSON (Page)
// when the request's Accept prefers application/json to text/html, or
// its query says format=json; HTML otherwise, which reloads itself every
// Config.Refresh (a "refresh" query parameter in seconds overrides it; 0
// turns it off). Responses are not cached and carry a Content-Security-
// Policy that allows no script and no request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hd.Set("Allow", "GET, HEAD")
		http.Error(w, "405 method not allowed: the status page is read-only (GET, HEAD)", http.StatusMethodNotAllowed)
		return
	}
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Content-Security-Policy", contentSecurityPolicy)
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Vary", "Accept")
	p := h.Page()
	var buf bytes.Buffer
	var err error
	if wantsJSON(r) {
		hd.Set("Content-Type", "application/json")
		err = json.NewEncoder(&buf).Encode(p)
	} else {
		hd.Set("Content-Type", "text/html; charset=utf-8")
		err = render(&buf, newView(p, h.cfg, refreshOf(r, h.cfg.Refresh)))
	}
	if err != nil {
		h.log.Error("statuspage: page not served", "reason", "rendering failed", "err", err)
		http.Error(w, "500 internal server error: the page could not be rendered", http.StatusInternalServerError)
		return
	}
	hd.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		if _, err := w.Write(buf.Bytes()); err != nil {
			h.log.Debug("statuspage: page not served", "reason", "the client went away", "err", err)
		}
	}
}

// maxRefresh caps the refresh query parameter.
const maxRefresh = 24 * time.Hour

// refreshOf returns how often the page requested reloads itself; 0:
// never.
func refreshOf(r *http.Request, def time.Duration) time.Duration {
	if v := r.URL.Query().Get("refresh"); v != "" {
		if s, err := strconv.Atoi(v); err == nil && s >= 0 {
			return min(time.Duration(s)*time.Second, maxRefresh)
		}
	}
	return max(def, 0)
}

// wantsJSON reports whether r asks for JSON: format=json in its query, or
// an Accept that ranks application/json above text/html (by quality, then
// by how exactly each is named: "application/json, */*" asks for JSON).
func wantsJSON(r *http.Request) bool {
	switch r.URL.Query().Get("format") {
	case "json":
		return true
	case "html":
		return false
	}
	var jsonQ, htmlQ acceptance
	for _, field := range r.Header.Values("Accept") {
		for part := range strings.SplitSeq(field, ",") {
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil {
				continue
			}
			q := 1.0
			if v, ok := params["q"]; ok {
				if f, err := strconv.ParseFloat(v, 64); err == nil && f >= 0 && f <= 1 {
					q = f
				}
			}
			jsonQ = jsonQ.better(mt, q, "application/json", "application/*")
			htmlQ = htmlQ.better(mt, q, "text/html", "text/*")
		}
	}
	if jsonQ.q <= 0 {
		return false
	}
	return jsonQ.q > htmlQ.q || jsonQ.q == htmlQ.q && jsonQ.exact > htmlQ.exact
}

// acceptance is how an Accept header ranks one media type: the quality of
// the most exact range naming it and how exact that is (2: by its name, 1:
// by its type's wildcard, 0: by */*).
type acceptance struct {
	q     float64
	exact int
	set   bool
}

// better returns a with the media range mt of quality q taken into
// account for the type named full, whose wildcard is group.
func (a acceptance) better(mt string, q float64, full, group string) acceptance {
	exact := -1
	switch mt {
	case full:
		exact = 2
	case group:
		exact = 1
	case "*/*":
		exact = 0
	}
	if exact < 0 || a.set && exact < a.exact {
		return a
	}
	return acceptance{q: q, exact: exact, set: true}
}
