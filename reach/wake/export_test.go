package wake

// WithConnErrorHook sets the test seam that runs in the subscriber
// goroutine when its connection breaks, before it redials: a test holds
// the subscriber deaf there to publish a message it is sure to miss.
func WithConnErrorHook(o RedisOptions, f func()) RedisOptions {
	o.onConnError = f
	return o
}
