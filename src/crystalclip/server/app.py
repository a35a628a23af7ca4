"""The HTTP API and web page over one index: `create_app("my_index")` (or `create_app()`: the packaged
corpus), served by `crystalclip serve`.

    GET  /health                  {"status": "ok", "structures": N, "model": its directory name}
    GET  /api/search?q=...&k=10   ranked structures (+ elements, spacegroup, crystal_system filters)
    POST /api/classify            multipart: file (a CIF), labels ("a,b,c"), template ("a {} material")
    GET  /api/structures/{id}     the CIF text of an indexed structure (?format=optimade: a structures resource)
    GET  /api/details/{id}        formula, space group, lattice, density, sites, source link, paired texts
    GET  /api/similar/{id}?k=10   "more like this": structures whose embeddings are nearest to this one's
    GET  /                        the web page (static/index.html)
    GET  /openapi.json            the OpenAPI schema

Every error is a JSON {"detail": "one line"} with a 4xx status; no traceback reaches a client. A request
never names a file: structure ids are looked up in the index's metadata and only the path recorded
there is read.
"""
from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
from fastapi import FastAPI, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel

from ..api import MAX_LABEL_CHARS, MAX_LABELS, check_prompts, load, open_index
from ..errors import CrystalclipError
from ..index import MAX_K
from .batching import SearchBatcher

STATIC = Path(__file__).parent / "static"
MAX_QUERY_CHARS = 500
MAX_UPLOAD_BYTES = 5 * 1024 * 1024
FORM_SLACK = 64 * 1024  # multipart headers and the labels/template fields around the file
log = logging.getLogger(__name__)


class Health(BaseModel):
    status: str
    structures: int
    model: str
    viewer: bool
    sources: dict[str, int]


class Lattice(BaseModel):
    a: float
    b: float
    c: float
    alpha: float
    beta: float
    gamma: float
    volume: float


class Details(BaseModel):
    """What the details panel shows about one structure; `link` leads to its source's own page."""

    id: str
    source: str | None
    formula: str
    elements: list[str]
    spacegroup_number: int | None
    spacegroup_symbol: str | None
    crystal_system: str | None
    lattice: Lattice
    density: float
    nsites: int
    link: str | None
    reference: str | None
    texts: list[str]


class SearchResult(BaseModel):
    """Index.search's result without `path`: no response names a file on the server."""

    rank: int
    id: str
    source: str | None
    formula: str
    spacegroup_number: int | None
    spacegroup_symbol: str | None
    crystal_system: str | None
    score: float
    text: str | None


class SearchResponse(BaseModel):
    query: str
    results: list[SearchResult]


class Classified(BaseModel):
    id: str
    probabilities: dict[str, float]


class ClassifyResponse(BaseModel):
    labels: list[str]
    template: str
    results: list[Classified]


class Error(BaseModel):
    detail: str


ERRORS = {code: {"model": Error} for code in (400, 404, 409, 413, 422)}


def create_app(index_dir=None, model=None) -> FastAPI:
    """Load the index once and its model (the one recorded in the index unless `model` is given: a name,
    a run directory or a loaded Model; ModelMismatch if they differ). No index: the packaged corpus
    under `model` (default: the default model)."""
    if index_dir is None:
        from ..embedded import ensure_index

        index = ensure_index(model if hasattr(model, "encode_texts") else load(model or "default"))
    else:
        index = open_index(index_dir, model)
    model = index.model
    structures = None
    if index_dir is None:
        from ..embedded.corpus import Structures

        structures = Structures()  # the corpus's arrays, links and texts, read on first use
    sources = {str(k): int(v) for k, v in index.meta["source"].dropna().value_counts().items()}
    rows = {}
    for i, structure_id in enumerate(index.meta["id"].astype(str)):
        rows.setdefault(structure_id, i)
    batcher = SearchBatcher(index)  # concurrent searches share one text-tower call and one faiss call
    lock = batcher.work  # one model call at a time: HF tokenizers are not safe across threads

    app = FastAPI(title="crystalclip", version="1", description="Search crystal structures with text.",
                  docs_url=None, redoc_url=None)  # their pages load scripts from a CDN; the schema is /openapi.json
    app.add_middleware(BodyLimit, limit=MAX_UPLOAD_BYTES + FORM_SLACK)
    app.state.index, app.state.model = index, model

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError):
        parts = [f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'request'}: {e.get('msg', 'invalid')}"
                 for e in error.errors()]
        return JSONResponse({"detail": "; ".join(parts)}, status_code=422)

    @app.exception_handler(Exception)
    async def crashed(request: Request, error: Exception):
        log.exception("%s %s failed", request.method, request.url.path)
        return JSONResponse({"detail": "internal error (logged on the server)"}, status_code=500)

    @app.get("/health", response_model=Health)
    def health():
        return {"status": "ok", "structures": index.count, "model": Path(index.info["model"]["path"]).name,
                "viewer": (STATIC / "vendor" / "3Dmol-min.js").is_file(), "sources": sources}

    def row_of(structure_id: str) -> int:
        if structure_id not in rows:
            raise HTTPException(404, f"no structure with id {structure_id!r} in the index")
        return rows[structure_id]

    def looked_up(structure_id: str) -> tuple[int, object, dict | None]:
        """(index row, Crystal, corpus record or None) of an indexed structure; 404 if there is none."""
        row = row_of(structure_id)
        if structures is not None and (stored := structures.row(structure_id)) is not None:
            record = structures.record(stored)
            return row, structures.crystal(record), record
        return row, _read_back(structure_id, index.meta.iloc[row]["path"]), None

    @app.get("/api/search", response_model=SearchResponse, responses=ERRORS)
    def search(q: str = Query(..., max_length=MAX_QUERY_CHARS, description="what you are looking for, in words"),
               k: int = Query(10, ge=1, le=MAX_K),
               elements: str | None = Query(None, max_length=200, description="all of these, e.g. Cu,O"),
               spacegroup: str | None = Query(None, max_length=200, description="1-230 or a symbol, or several: 62,Fm-3m"),
               crystal_system: str | None = Query(None, max_length=20, description="cubic, hexagonal, ..."),
               source: str | None = Query(None, max_length=200, description="mp, amcsd, core-mof, mp40, ...")):
        if not q.strip():
            raise HTTPException(400, "empty query")
        if index.count == 0:
            raise HTTPException(409, "the index is empty: nothing to search (see its failed.csv)")
        try:
            results = batcher.search(q, k, elements=elements, spacegroup=spacegroup, crystal_system=crystal_system,
                                     source=source)
        except CrystalclipError as error:
            raise HTTPException(400, str(error)) from None
        return {"query": q, "results": results}

    @app.post("/api/classify", response_model=ClassifyResponse, responses=ERRORS)
    async def classify(file: UploadFile = File(..., description="a CIF file (at most 5 MB)"),
                       labels: str = Form(..., max_length=MAX_LABELS * (MAX_LABEL_CHARS + 1),
                                          description="comma-separated: superconductor,insulator"),
                       template: str = Form("{}", max_length=200, description="e.g. 'a {} material'")):
        try:
            names = check_prompts(labels.split(","), template)
        except CrystalclipError as error:
            raise HTTPException(400, str(error)) from None
        data = await file.read(MAX_UPLOAD_BYTES + 1)
        if len(data) > MAX_UPLOAD_BYTES:
            raise HTTPException(413, f"upload larger than {MAX_UPLOAD_BYTES // 2**20} MB")
        crystals = _parse_upload(data, file.filename or "upload")
        try:
            with lock:
                p = model.classify(crystals, names, template=template)
        except CrystalclipError as error:
            raise HTTPException(400, str(error)) from None
        return {"labels": names, "template": template,
                "results": [{"id": c.id, "probabilities": {n: round(float(x), 4) for n, x in zip(names, row)}}
                            for c, row in zip(crystals, p)]}

    @app.get("/api/structures/{structure_id:path}", response_class=PlainTextResponse,
             responses={200: {"content": {"text/plain": {}, "application/json": {}}}, 404: {"model": Error}})
    def structure(structure_id: str, format: str = Query("cif", pattern="^(cif|optimade)$",
                                                         description="cif, or optimade (a structures resource)")):
        if format == "optimade":
            from ..structures.optimade import to_optimade

            _, crystal, _ = looked_up(structure_id)
            return JSONResponse({"data": to_optimade(crystal, structure_id), "meta": {"api_version": "1.2.0"}})
        if structures is None:
            text = _cif_text(structure_id, index.meta.iloc[row_of(structure_id)]["path"])
        else:
            _, crystal, record = looked_up(structure_id)
            text = _corpus_cif(crystal, record)
        filename = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in structure_id) + ".cif"
        return PlainTextResponse(text, media_type="text/plain; charset=utf-8",
                                 headers={"Content-Disposition": f'inline; filename="{filename}"'})

    @app.get("/api/details/{structure_id:path}", response_model=Details, responses=ERRORS)
    def details(structure_id: str):
        from ..structures.properties import cell_summary, spacegroup_symbols

        row, crystal, record = looked_up(structure_id)
        meta = index.meta.iloc[row]
        number = None if pd.isna(meta["spacegroup_number"]) else int(meta["spacegroup_number"])
        texts = list(record["texts"]) if record else ([meta["text"]] if isinstance(meta["text"], str) else [])
        return {"id": structure_id, "source": meta["source"], "formula": meta["formula"],
                "elements": list(meta["elements"]), "spacegroup_number": number,
                "spacegroup_symbol": spacegroup_symbols().get(number) if number else None,
                "crystal_system": meta["crystal_system"], **cell_summary(crystal),
                "link": record["link"] if record else None, "reference": record["reference"] if record else None,
                "texts": texts}

    @app.get("/api/similar/{structure_id:path}", response_model=SearchResponse, responses=ERRORS)
    def similar(structure_id: str, k: int = Query(10, ge=1, le=MAX_K - 1),
                elements: str | None = Query(None, max_length=200),
                spacegroup: str | None = Query(None, max_length=200),
                crystal_system: str | None = Query(None, max_length=20),
                source: str | None = Query(None, max_length=200)):
        """Structure -> structure: the indexed structures nearest to this one (itself left out)."""
        vector = index.faiss.reconstruct(row_of(structure_id))
        try:
            found = index.search(vector, k=k + 1, elements=elements, spacegroup=spacegroup,
                                 crystal_system=crystal_system, source=source)
        except CrystalclipError as error:
            raise HTTPException(400, str(error)) from None
        others = [r for r in found if r["id"] != structure_id][:k]
        return {"query": f"like {structure_id}", "results": [{**r, "rank": i} for i, r in enumerate(others, 1)]}

    @app.get("/", include_in_schema=False)
    def page():
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _parse_upload(data: bytes, filename: str) -> list:
    from ..structures import StructureError, parse_cif

    if not data.strip():
        raise HTTPException(400, "not a CIF: empty file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise HTTPException(400, "not a CIF: not UTF-8 text") from None
    try:
        return parse_cif(text, Path(filename).stem or "upload")
    except StructureError as error:
        reason = str(error).splitlines()[0] if str(error) else "unreadable"
        raise HTTPException(400, f"not a usable CIF: {reason}") from None


def _corpus_cif(crystal, record: dict) -> str:
    """A corpus structure as CIF (P1, as stored), headed by where it comes from."""
    from pymatgen.io.cif import CifWriter

    head = [f"# {crystal.id} from the crystalclip corpus: {record['reference'] or record['id']}"]
    if record["link"]:
        head.append(f"# {record['link']}")
    head.append("# fractional coordinates as stored in the corpus, on a grid of 1/65536 of each lattice vector")
    return "\n".join(head) + "\n" + str(CifWriter(crystal.to_pymatgen()))


def _read_back(structure_id: str, path):
    """The Crystal of a structure in a user's index, parsed again from its file."""
    from ..structures import StructureError, parse_cif

    text = _cif_text(structure_id, path)
    try:
        crystals = parse_cif(text, structure_id.rpartition("#")[0] or structure_id)
    except StructureError as error:
        raise HTTPException(404, f"the structure {structure_id!r} could not be read back: {error}") from None
    return next((c for c in crystals if c.id == structure_id), crystals[0])


def _cif_text(structure_id: str, path) -> str:
    """CIF text of one indexed structure, read from the file recorded for it (its block, its CSV row)."""
    if path is None or pd.isna(path) or not Path(path).is_file():
        raise HTTPException(404, f"the file of {structure_id!r} is not available (indexed from memory, or moved)")
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix in (".cif", ".mcif"):
            text = path.read_text(encoding="utf-8-sig")
            block = structure_id.rpartition("#")[2] if "#" in structure_id else None
            if block is not None:
                import gemmi

                found = gemmi.cif.read_string(text).find_block(block)
                if found is not None:
                    return found.as_string()
            return text
        if suffix == ".csv":
            table = pd.read_csv(path)
            column = next((c for c in ("id", "material_id", "name") if c in table.columns), None)
            if column is not None:
                hits = table[table[column].astype(str) == structure_id]
                if len(hits):
                    return str(hits["cif"].iloc[0])
        else:
            from pymatgen.io.cif import CifWriter

            from ..structures import Crystal, iter_crystals

            for found in iter_crystals(path):
                if isinstance(found, Crystal) and (structure_id == found.id or structure_id.endswith("/" + found.id)):
                    return str(CifWriter(found.to_pymatgen()))
    except (OSError, UnicodeDecodeError, ValueError, RuntimeError):
        log.exception("reading the CIF of %s from %s", structure_id, path)
    raise HTTPException(404, f"the structure {structure_id!r} could not be read back from its file")


class BodyLimit:
    """413 for a POST whose Content-Length, or whose body as it arrives, is larger than `limit` bytes."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        length = headers.get(b"content-length", b"")
        if length and (not length.isdigit() or int(length) > self.limit):
            return await self._reject(scope, receive, send)
        seen = 0

        async def limited():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise HTTPException(413, f"upload larger than {MAX_UPLOAD_BYTES // 2**20} MB")
            return message

        await self.app(scope, limited, send)

    async def _reject(self, scope, receive, send):
        response = JSONResponse({"detail": f"upload larger than {MAX_UPLOAD_BYTES // 2**20} MB"}, status_code=413,
                                headers={"Connection": "close"})
        await response(scope, receive, send)
