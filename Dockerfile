# The worker image: the project and its dependencies, nothing else.
FROM python:3.12-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY core core
COPY baselinker baselinker
COPY workflows workflows
COPY activities activities
COPY simulators simulators
COPY migrations migrations
COPY worker.py starter.py ./
RUN pip install --no-cache-dir .
USER nobody
CMD ["python", "worker.py"]
