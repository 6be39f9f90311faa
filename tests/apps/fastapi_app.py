"""A FastAPI app: a pydantic model POST and path parameters."""

from __future__ import annotations

from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI()


class Item(BaseModel):
    name: str
    price: float
    tags: list[str] = []


@app.post("/items")
async def create_item(item: Item) -> dict[str, object]:
    return {"name": item.name, "price_with_tax": round(item.price * 1.2, 2), "tags": item.tags}


@app.get("/users/{user_id}/orders/{order_id}")
async def get_order(user_id: int, order_id: str) -> dict[str, object]:
    return {"user_id": user_id, "order_id": order_id}
