package health

import (
	"math"
	"math/rand/v2"
	"strconv"
	"time"
)

// sample is one target's passive outcomes over an outlier interval.
type sample struct {
	t *target
	w window
}

func (w window) volume() int { return int(w.ok) + int(w.failed) }

// successRate returns w's share of successes, in [0, 1].
func (w window) successRate() float64 { return float64(w.ok) / float64(w.volume()) }

// outliers runs outlier detection when it is due at now and returns when it
// is due next; zero when outlier detection is off. c.mu is held.
func (c *Checker) outliers(now time.Time) time.Time {
	iv := c.cfg.Passive.Outlier.Interval
	switch {
	case iv <= 0:
		c.outlierAt = time.Time{}
		return time.Time{}
	case c.outlierAt.IsZero():
		// The first interval starts now; what was counted before Run counts
		// in it too.
		c.outlierAt = now.Add(iv)
	case !now.Before(c.outlierAt):
		c.detectOutliers(now)
		c.outlierAt = now.Add(iv)
	}
	return c.outlierAt
}

// detectOutliers evaluates one interval: it ejects the targets whose success
// rate or failure percentage marks them as outliers among the targets that
// are not ejected, as gRFC A50 describes (request-volume and minimum-host
// floors, enforcement percentage), never ejecting more targets than
// Outlier.MaxEjectionPercent allows; then it starts a new interval for
// every target. c.mu is held.
func (c *Checker) detectOutliers(now time.Time) {
	o := &c.cfg.Passive.Outlier
	c.stats.OutlierEvaluations++
	ss := c.samples[:0]
	for _, t := range c.targets {
		if !t.state.passive.ejected() {
			ss = append(ss, sample{t: t, w: t.state.window})
		}
		t.state.window = window{}
	}
	if sr := o.SuccessRate; sr != nil {
		if limit, mean, sd, ok := successRateLimit(ss, sr); ok {
			for _, s := range ss {
				// Below the limit by more than rounding: equal success rates
				// are never outliers, whatever the factor.
				if s.w.volume() < sr.RequestVolume || s.w.successRate() >= limit-1e-9 {
					continue
				}
				c.ejectOutlier(s.t, sr.EnforcementPercentage, now, "outlier: success rate "+
					percent(s.w.successRate())+" below "+percent(limit)+
					" (mean "+percent(mean)+", stdev "+percent(sd)+")")
			}
		}
	}
	if fp := o.FailurePercentage; fp != nil && enough(ss, fp.RequestVolume, fp.MinimumHosts) {
		threshold := orZero(fp.Threshold)
		for _, s := range ss {
			if s.w.volume() < fp.RequestVolume || s.t.state.passive.ejected() {
				continue
			}
			// In integers: a share exactly at the threshold is not above it.
			if int(s.w.failed)*100 > threshold*s.w.volume() {
				c.ejectOutlier(s.t, fp.EnforcementPercentage, now, "outlier: failure percentage "+
					percent(1-s.w.successRate())+" above "+strconv.Itoa(threshold)+"%")
			}
		}
	}
	clear(ss)
	c.samples = ss[:0]
}

// ejectOutlier counts an outlier found and ejects t with probability
// enforce percent (which may be Zero), if the ejection cap allows it; c.mu
// is held.
func (c *Checker) ejectOutlier(t *target, enforce int, now time.Time, reason string) {
	c.stats.OutliersDetected++
	if enforce = orZero(enforce); !c.mayEject() || (enforce < 100 && rand.IntN(100) >= enforce) {
		return
	}
	before := t.state.verdicts()
	t.state.passive.eject(c.rules.ejection, now, c.jitter())
	c.settle(t, before, reason, now)
}

// enough reports whether at least hosts samples have volume requests.
func enough(ss []sample, volume, hosts int) bool {
	n := 0
	for _, s := range ss {
		if s.w.volume() >= volume {
			n++
		}
	}
	return n >= hosts
}

// successRateLimit returns mean − factor × stdev of the success rates of
// the samples with at least sr.RequestVolume requests, with the mean and
// standard deviation, and false when fewer than sr.MinimumHosts have.
func successRateLimit(ss []sample, sr *SuccessRate) (limit, mean, sd float64, ok bool) {
	var n, sum float64
	for _, s := range ss {
		if s.w.volume() >= sr.RequestVolume {
			n++
			sum += s.w.successRate()
		}
	}
	if n < float64(sr.MinimumHosts) || n == 0 {
		return 0, 0, 0, false
	}
	mean = sum / n
	var dev float64
	for _, s := range ss {
		if s.w.volume() >= sr.RequestVolume {
			d := s.w.successRate() - mean
			dev += d * d
		}
	}
	sd = math.Sqrt(dev / n)
	return mean - orZero(sr.StdevFactor)*sd, mean, sd, true
}

// percent formats a share as a percentage.
func percent(f float64) string { return strconv.FormatFloat(f*100, 'f', 0, 64) + "%" }
