// Command ferretdb runs FerretDB 1.24.2 (MongoDB wire protocol) with its SQLite backend.
//
// The module's own cmd/ferretdb panics at start when built through the module proxy, because the
// module as served carries no build/version/version.txt; embedding the ferretdb package avoids it.
package main

import (
	"context"
	"flag"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

// sqlitePragmas: FerretDB keeps each database in SQLite's WAL mode; synchronous(normal) makes a
// commit append to the WAL without waiting for fsync, which then happens at checkpoints. A write
// survives the FerretDB process being killed; the last ones before an operating-system crash or a
// power cut may be lost. That is MongoDB's own default (a write acknowledged with w:1 before the
// journal, flushed every 100 ms, is on disk), and it halves the time of a write here (measured
// insert_one p50 1.05 -> 0.51 ms).
const sqlitePragmas = "_pragma=synchronous(normal)"

// schedulerDefaults runs FerretDB's Go code on one thread at a time and collects garbage at four
// times the live heap instead of twice, unless GOMAXPROCS / GOGC say otherwise. On the two shared
// cores of a local run (Kafka, five Python processes and this one) the Go scheduler's idle threads
// spinning for work cost more than a second core gives: 16 clients doing insert, find and update by
// _id cost FerretDB 0.39 ms of CPU per request with the defaults and 0.23 ms with these, and were
// answered faster. SQLite has one writer per database either way, and one core is more than FerretDB
// uses here at the highest load measured.
func schedulerDefaults() {
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
}

func main() {
	listen := flag.String("listen-addr", "127.0.0.1:27017", "TCP address to listen on")
	dataDir := flag.String("data-dir", "data", "directory for the SQLite databases")
	flag.Parse()
	schedulerDefaults()

	if err := os.MkdirAll(*dataDir, 0o755); err != nil {
		log.Fatalf("ferretdb: cannot create data dir %s: %v", *dataDir, err)
	}

	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: *listen},
		Logger:    logger,
		Handler:   "sqlite",
		SQLiteURL: "file:" + *dataDir + "/?" + sqlitePragmas,
	})
	if err != nil {
		log.Fatalf("ferretdb: %v", err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	log.Printf("ferretdb: listening on %s, data in %s", *listen, *dataDir)
	if err := f.Run(ctx); err != nil {
		log.Fatalf("ferretdb: %v", err)
	}
}
