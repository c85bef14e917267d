// Typed helpers over the PocketBase-style collection routes.
import { api, call } from "./client";
import type { Page } from "./types";

export interface ListQuery {
  page?: number;
  perPage?: number;
  sort?: string;
  filter?: string;
  expand?: string;
}

export async function listRecords<T>(collection: string, query: ListQuery = {}): Promise<Page<T>> {
  const data = await call(
    api.GET("/api/collections/{collection}/records", {
      params: { path: { collection }, query },
    }),
  );
  return data as unknown as Page<T>;
}

export async function viewRecord<T>(collection: string, id: string): Promise<T> {
  const data = await call(
    api.GET("/api/collections/{collection}/records/{record_id}", {
      params: { path: { collection, record_id: id } },
    }),
  );
  return data as T;
}

export async function createRecord<T>(collection: string, body: Record<string, unknown>): Promise<T> {
  const data = await call(
    api.POST("/api/collections/{collection}/records", {
      params: { path: { collection } },
      body,
    }),
  );
  return data as T;
}

export async function updateRecord<T>(
  collection: string,
  id: string,
  body: Record<string, unknown>,
): Promise<T> {
  const data = await call(
    api.PATCH("/api/collections/{collection}/records/{record_id}", {
      params: { path: { collection, record_id: id } },
      body,
    }),
  );
  return data as T;
}

export async function deleteRecord(collection: string, id: string): Promise<void> {
  await call(
    api.DELETE("/api/collections/{collection}/records/{record_id}", {
      params: { path: { collection, record_id: id } },
      parseAs: "text",
    }),
  );
}

/** Quotes a value for a collection filter expression. */
export function quote(value: string): string {
  return `"${value.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}
