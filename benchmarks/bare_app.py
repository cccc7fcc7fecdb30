"""A bare endpoint of the same framework and server, for comparison in benchmarks."""

from fastapi import FastAPI
from fastapi.responses import Response

app = FastAPI()
_BODY = b'{"resourceType":"Patient","id":"bare","gender":"female","birthDate":"1990-05-17"}'


@app.get("/bare")
def bare() -> Response:
    return Response(_BODY, media_type="application/fhir+json")
