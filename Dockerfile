# One image for every Switchboard process; the build argument MEMBER picks the workspace member:
#   docker build --build-arg MEMBER=gateway -t switchboard-gateway .
#   (MEMBER: gateway, persona-svc, call-control-svc, contacts-svc, leads-svc)
# The image runs that member's `python -m <module>` and checks its /healthz on the member's port.
FROM python:3.11-slim AS build
ARG MEMBER
RUN pip install --no-cache-dir uv==0.13.*
ENV UV_PYTHON_DOWNLOADS=never UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy
WORKDIR /app
# Member, package, module and port: the one table of the image (tests/test_compose.py checks it).
RUN case "$MEMBER" in \
      gateway)          echo "switchboard-gateway gateway 9443" ;; \
      persona-svc)      echo "persona-svc persona_svc 9501" ;; \
      call-control-svc) echo "call-control-svc call_control_svc 9502" ;; \
      contacts-svc)     echo "contacts-svc contacts_svc 9503" ;; \
      leads-svc)        echo "leads-svc leads_svc 9504" ;; \
      *) echo "MEMBER must be one of gateway, persona-svc, call-control-svc, contacts-svc, leads-svc (got '$MEMBER')" >&2; exit 1 ;; \
    esac >/app/process
COPY pyproject.toml uv.lock ./
COPY shared shared
COPY gateway/pyproject.toml gateway/pyproject.toml
COPY call-control-svc/pyproject.toml call-control-svc/pyproject.toml
COPY contacts-svc/pyproject.toml contacts-svc/pyproject.toml
COPY leads-svc/pyproject.toml leads-svc/pyproject.toml
COPY persona-svc/pyproject.toml persona-svc/pyproject.toml
COPY ${MEMBER} ${MEMBER}
RUN read -r package module port </app/process \
 && uv sync --frozen --no-dev --no-editable --package "$package" \
 && printf '%s\n' "$module" >/app/module && printf '%s\n' "$port" >/app/port

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home-dir /app switchboard
WORKDIR /app
COPY --from=build /app/.venv /app/.venv
COPY --from=build /app/module /app/port /app/
ENV PATH=/app/.venv/bin:$PATH PYTHONUNBUFFERED=1
USER switchboard
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % open('/app/port').read().strip(), timeout=2)"]
CMD ["sh", "-c", "exec python -m \"$(cat /app/module)\""]
