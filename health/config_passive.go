package health

import (
	"math"
	"net/http"
	"strings"
	"time"
)

// normalizePassive validates p's ejection and outlier settings and fills in
// their defaults. The outlier algorithms' structs are copied, so the caller
// may keep modifying its own.
func normalizePassive(p *Passive) error {
	e := &p.Ejection
	switch {
	case e.Base < 0:
		return invalid("Passive.Ejection.Base", "must not be negative")
	case e.Max < 0:
		return invalid("Passive.Ejection.Max", "must not be negative")
	}
	if e.Base == 0 {
		e.Base = DefaultEjectionBase
	}
	if e.Max == 0 {
		e.Max = max(DefaultEjectionMax, e.Base)
	}
	if e.Max < e.Base {
		return invalid("Passive.Ejection.Max", e.Max.String()+" is less than Base "+e.Base.String())
	}
	o := &p.Outlier
	switch {
	case o.Interval < 0:
		return invalid("Passive.Outlier.Interval", "must not be negative")
	case !percentOrZero(o.MaxEjectionPercent):
		return invalid("Passive.Outlier.MaxEjectionPercent", "must be within 0..100, or Zero")
	}
	if o.Interval == 0 {
		// Off: nothing else applies, and nothing else is kept, so that
		// configurations that mean the same compare equal.
		*o = Outlier{}
		return nil
	}
	if o.MaxEjectionPercent == 0 {
		o.MaxEjectionPercent = DefaultMaxEjectionPercent
	}
	if sr := o.SuccessRate; sr != nil {
		v := *sr
		if math.IsNaN(v.StdevFactor) || math.IsInf(v.StdevFactor, 0) || (v.StdevFactor < 0 && v.StdevFactor != Zero) {
			return invalid("Passive.Outlier.SuccessRate.StdevFactor", "must be a finite number ≥ 0, or Zero")
		}
		if v.StdevFactor == 0 {
			v.StdevFactor = 1.9
		}
		if err := outlierFloors("SuccessRate", &v.EnforcementPercentage, &v.MinimumHosts, &v.RequestVolume, 100); err != nil {
			return err
		}
		o.SuccessRate = &v
	}
	if fp := o.FailurePercentage; fp != nil {
		v := *fp
		switch {
		case !percentOrZero(v.Threshold):
			return invalid("Passive.Outlier.FailurePercentage.Threshold", "must be within 0..100, or Zero")
		case v.Threshold == 0:
			v.Threshold = 85
		}
		if err := outlierFloors("FailurePercentage", &v.EnforcementPercentage, &v.MinimumHosts, &v.RequestVolume, 50); err != nil {
			return err
		}
		o.FailurePercentage = &v
	}
	return nil
}

// outlierFloors validates and defaults the fields both algorithms share.
func outlierFloors(algo string, enforce, hosts, volume *int, defVolume int) error {
	field := "Passive.Outlier." + algo + "."
	switch {
	case !percentOrZero(*enforce):
		return invalid(field+"EnforcementPercentage", "must be within 0..100, or Zero")
	case *hosts < 0:
		return invalid(field+"MinimumHosts", "must not be negative")
	case *volume < 0:
		return invalid(field+"RequestVolume", "must not be negative")
	}
	if *enforce == 0 {
		*enforce = 100
	}
	if *hosts == 0 {
		*hosts = 5
	}
	if *volume == 0 {
		*volume = defVolume
	}
	return nil
}

// percentOrZero reports whether p is a percentage or Zero.
func percentOrZero(p int) bool { return p == Zero || 0 <= p && p <= 100 }

// checkHeaders refuses probe headers that cannot be sent or that would
// fight the checker's own: Host is Active.Host's.
func checkHeaders(h http.Header) error {
	for k, vs := range h {
		if !validHeaderName(k) {
			return invalid("Active.Headers", "invalid header name "+quote(k))
		}
		if strings.EqualFold(k, "Host") {
			return invalid("Active.Headers", "set the Host header with Active.Host")
		}
		for _, v := range vs {
			if strings.ContainsAny(v, "\r\n\x00") {
				return invalid("Active.Headers", "invalid value of "+k)
			}
		}
	}
	return nil
}

// validHeaderName reports whether k is an RFC 9110 token.
func validHeaderName(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

func quote(s string) string { return "\"" + strings.ToValidUTF8(s, "?") + "\"" }

// ejectionFor returns how long the n-th recent ejection lasts under e, less
// jit (in [0, 1)) times 10%: Base·n capped at Max.
func ejectionFor(e Ejection, n int, jit float64) time.Duration {
	d := e.Max
	if n > 0 && e.Base <= e.Max/time.Duration(n) {
		d = e.Base * time.Duration(n)
	}
	return d - time.Duration(jit*0.1*float64(d))
}
