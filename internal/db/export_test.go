package db

// ClientsEventsAfterSQL is ClientsEventsAfter's statement, for tests that
// look at its plan.
var ClientsEventsAfterSQL = clientsEventsAfter
