// Package testbed starts what the integration tests and the benchmark
// tools run against: a Postgres container, the real sessiond binary (built
// from this module, started, and waited for until /readyz answers 200) and
// a webhook receiver that verifies every signature. It is for tests and
// the benchmark commands only; cmd/sessiond never imports it.
package testbed
