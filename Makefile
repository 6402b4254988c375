.PHONY: run demo test unit infra-up infra-down infra-status infra-reset bench

run:            ## Install everything, start Kafka, the database, every service and the gateway
	scripts/run

demo:           ## The same as run, then a scripted demo call through the MCP endpoint
	scripts/run --demo

test:           ## Install everything, start the real servers, run all tests
	scripts/test

unit:           ## The unit tests alone: no servers, under a minute
	scripts/uv run --frozen pytest -m "not integration and not e2e and not faults and not security" -q

infra-up:
	scripts/infra up

infra-down:
	scripts/infra down

infra-status:
	scripts/infra status

infra-reset:
	scripts/infra reset

bench:
	scripts/uv run --frozen python -m bench
