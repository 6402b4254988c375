"""`python -m leads_svc` / `leads-svc`: run the leads service until SIGTERM."""

from leads_svc.bootstrap import create_service
from switchboard import service


def main() -> None:
    service.main(create_service())


if __name__ == "__main__":
    main()
