run:
	./scripts/run_demo.sh

test:
	./scripts/test.sh

lint:
	.venv/bin/ruff check .

# N = 1,000 and 1,000,000 users (a few minutes); `make bench ARGS=--quick` for 1,000 only. See README "Performance".
bench:
	./scripts/bootstrap.sh dev
	command -v wrk >/dev/null || apt-get install -y wrk
	BENCH_DATABASE_URL="$$(./scripts/ensure_postgres.sh bench_perf)" .venv/bin/python bench/run.py $(ARGS)

.PHONY: run test lint bench
