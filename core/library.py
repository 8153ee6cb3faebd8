"""Assets: the files a generation made, stored as blobs and carrying their own parameters."""

from __future__ import annotations

import io
import json
from typing import Any

from sqlalchemy import Connection, insert, select

from core.accounts import Principal
from core.errors import NotFound
from core.generations import AssetInfo, asset_info
from core.types import Output
from db.schema import assets, new_id
from db.storage import BlobStorage

_EXTENSIONS = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/webp": "webp",
    "audio/wav": "wav",
    "audio/mpeg": "mp3",
    "video/mp4": "mp4",
    "text/plain": "txt",
}


def store_output(
    conn: Connection,
    storage: BlobStorage,
    principal: Principal,
    project_id: str,
    generation_id: str,
    output: Output,
    recipe: dict[str, Any],
) -> AssetInfo:
    """Save one output as an asset of the project, with its recipe embedded where the format allows."""
    asset_id = new_id()
    data = embed_recipe(output.data, output.mime, recipe)
    ext = _EXTENSIONS.get(output.mime, "bin")
    key = f"{principal.org_id}/{project_id}/{asset_id}.{ext}"
    storage.put(key, data, output.mime)
    conn.execute(
        insert(assets).values(
            id=asset_id,
            org_id=principal.org_id,
            project_id=project_id,
            generation_id=generation_id,
            kind=output.mime.split("/")[0],
            storage_key=key,
            mime=output.mime,
            size_bytes=len(data),
            width=output.width,
            height=output.height,
            duration_s=output.duration_s,
            tags=[],
        )
    )
    return asset_info(conn.execute(select(assets).where(assets.c.id == asset_id)).one())


def embed_recipe(data: bytes, mime: str, recipe: dict[str, Any]) -> bytes:
    """PNGs carry their full recipe in a text chunk, so a file can be re-run or recalled later."""
    if mime != "image/png":
        return data
    from PIL import Image, PngImagePlugin

    with Image.open(io.BytesIO(data)) as image:
        info = PngImagePlugin.PngInfo()
        info.add_text("creator-workspace", json.dumps(recipe, sort_keys=True))
        out = io.BytesIO()
        image.save(out, format="PNG", pnginfo=info)
        return out.getvalue()


def read_recipe(data: bytes) -> dict[str, Any] | None:
    """The recipe embedded in a PNG we made, or None."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            text = image.info.get("creator-workspace")
    except Exception:
        return None
    return json.loads(text) if text else None


def find_asset(conn: Connection, principal: Principal, asset_id: str) -> AssetInfo:
    """One live asset of the principal's organization; NotFound otherwise."""
    row = conn.execute(
        select(assets).where(
            assets.c.id == asset_id,
            assets.c.org_id == principal.org_id,
            assets.c.deleted_at.is_(None),
        )
    ).first()
    if row is None:
        raise NotFound(f"No asset {asset_id}.")
    return asset_info(row)
