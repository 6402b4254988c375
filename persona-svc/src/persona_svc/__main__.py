"""`python -m persona_svc` and the `persona-svc` console script: run the service until SIGTERM."""

from switchboard.service import main as run

from persona_svc.bootstrap import build_service
from persona_svc.settings import PersonaSettings


def main() -> None:
    run(build_service(PersonaSettings()))


if __name__ == "__main__":
    main()
