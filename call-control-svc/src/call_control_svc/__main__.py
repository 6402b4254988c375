"""`python -m call_control_svc` (or the `call-control-svc` console script): run the call-control service."""

from switchboard.service import main as run

from call_control_svc.bootstrap import create_service
from call_control_svc.settings import CallControlSettings


def main() -> None:
    run(create_service(CallControlSettings()))


if __name__ == "__main__":
    main()
