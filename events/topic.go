package events

import "reflect"

// Topic names a stream of values of type T on a Bus. Topics are values:
// two Topics with the same name and type are the same topic. A Topic whose
// name matches another's but whose type differs is a different topic.
type Topic[T any] struct {
	name  string
	state bool
}

// NewTopic returns the event topic name for values of type T. Its
// subscribers receive every value published after they subscribed, in
// publish order; nothing is retained, so a late subscriber never receives an
// old event as if it were new.
func NewTopic[T any](name string) Topic[T] {
	return Topic[T]{name: name}
}

// NewStateTopic returns the state topic name for values of type T that each
// describe a whole state, so that only the newest one matters. The bus
// retains the newest value and hands it to a new subscriber first; a
// subscriber that falls behind skips to the newest value instead of
// receiving every intermediate one. Release drops the retained value.
func NewStateTopic[T any](name string) Topic[T] {
	return Topic[T]{name: name, state: true}
}

// Name returns the topic's name.
func (t Topic[T]) Name() string { return t.name }

// key identifies a topic on a bus: its name and its value type.
type key struct {
	name string
	typ  reflect.Type
}

func (t Topic[T]) key() key {
	return key{name: t.name, typ: reflect.TypeFor[T]()}
}

// Publish sends v to every subscriber of t on b and, when t is a state
// topic, retains it as t's latest value. It never blocks on a handler.
// Publish on a closed or nil bus does nothing.
func Publish[T any](b *Bus, t Topic[T], v T) {
	if b == nil {
		return
	}
	k := t.key()
	if !t.state && !b.followed(k) {
		return // nobody to tell, nothing to keep: not even boxed into an any
	}
	b.publish(k, t.state, v)
}

// Subscribe calls fn, asynchronously and in publish order, with every value
// published on t from now on; if t is a state topic with a retained value,
// fn receives that first.
// The returned function removes exactly this subscription, discards what
// is queued for it and waits for a call of fn in progress: once it returns,
// fn is not running and is never called again, and what fn wrote is visible
// to the caller, so fn needs no guard of its own. Called from within a
// handler (fn itself, or another subscription's), it returns at once
// without waiting, and fn's call in progress, if any, may still finish:
// when fn unsubscribes itself, that call is the caller. It must not be
// called while holding something fn waits for. It is safe to call more than
// once; every call that is not made from a handler waits.
//
// Subscribe on a closed or nil bus, or with a nil fn, subscribes nothing and
// returns a function that does nothing.
func Subscribe[T any](b *Bus, t Topic[T], fn func(T)) (unsubscribe func()) {
	if b == nil || fn == nil {
		return func() {}
	}
	deliver := func(v any) {
		x, _ := v.(T) // v is nil only for a nil T, whose zero value x already is
		fn(x)
	}
	return b.subscribe(t.key(), t.state, deliver)
}

// Release drops the value t retains on b and, once t has no subscriber,
// the bus's record of it: a process whose upstreams come and go releases
// their topics so that the bus does not grow without bound. Subscribers stay
// subscribed; a later Publish retains a value again.
func Release[T any](b *Bus, t Topic[T]) {
	if b == nil {
		return
	}
	b.release(t.key())
}

// Latest returns the value state topic t retains, and whether there is one.
// An event topic retains nothing: for it, Latest always reports false.
func Latest[T any](b *Bus, t Topic[T]) (T, bool) {
	var zero T
	if b == nil {
		return zero, false
	}
	v, ok := b.latest(t.key())
	if !ok {
		return zero, false
	}
	x, _ := v.(T)
	return x, true
}
