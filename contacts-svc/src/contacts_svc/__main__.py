"""`python -m contacts_svc` / `contacts-svc`: run the contacts service until SIGTERM."""

from contacts_svc.bootstrap import create_service
from contacts_svc.settings import ContactsSettings
from switchboard.service import main as run


def main() -> None:
    run(create_service(ContactsSettings()))


if __name__ == "__main__":
    main()
