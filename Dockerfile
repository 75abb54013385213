# Vigil service image: `vigil serve` by default; the same image runs `vigil sim` and set-up jobs.
FROM python:3.11-slim
WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
# DejaVu Sans, so that incident PDFs show names in any script (docs/review.md).
RUN apt-get update && apt-get install -y --no-install-recommends fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*
COPY requirements.lock ./
RUN pip install --no-cache-dir --require-hashes -r requirements.lock
COPY pyproject.toml README.md ./
COPY monitor ./monitor
COPY escalation ./escalation
COPY console ./console
COPY device_sim ./device_sim
COPY worker_app ./worker_app
COPY gateways ./gateways
RUN pip install --no-cache-dir --no-deps .
EXPOSE 8000
CMD ["vigil", "serve", "--host", "0.0.0.0"]
