// Package migrations holds the golang-migrate SQL files, embedded so the
// sessiond binary can migrate its own database.
package migrations

import "embed"

// FS contains every *.sql migration in this folder.
//
//go:embed *.sql
var FS embed.FS
