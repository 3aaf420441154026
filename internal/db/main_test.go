package db_test

import (
	"testing"

	"github.com/sessiond/sessiond/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }
