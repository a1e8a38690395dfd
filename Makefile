run:
	./scripts/run_demo.sh

test:
	./scripts/test.sh

lint:
	.venv/bin/ruff check .

# N = 1,000 and 1,000,000 users (a few minutes); `make bench ARGS=--quick` for 1,000 only. See docs/performance.md.
bench:
	./scripts/bootstrap.sh dev
	command -v wrk >/dev/null || apt-get install -y wrk
	BENCH_DATABASE_URL="$$(./scripts/ensure_postgres.sh bench_perf)" .venv/bin/python bench/run.py $(ARGS)

# Provider verification against the HI emulator: inline cost, a hung register, 100,000 providers
# revalidated at 50 a second (about 6 minutes); `make bench-verification ARGS=--quick` for 10,000.
bench-verification:
	./scripts/bootstrap.sh dev
	.venv/bin/python bench/verification.py --database-url "$$(./scripts/ensure_postgres.sh bench_verification)" $(ARGS)

# docs/ rendered (MkDocs, material theme) on http://127.0.0.1:8001, rebuilt on every change.
docs:
	./scripts/bootstrap.sh dev
	NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs serve -a 127.0.0.1:8001

.PHONY: run test lint bench bench-verification docs
