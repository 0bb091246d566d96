/**
 * The single list of custom search attributes the service uses: the dev server registers them at start, an external
 * server gets them through `registerSearchAttributes`, and workflows upsert them through the typed keys below.
 * Pure module (only `@temporalio/common`), so workflow code may import it.
 */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/** Type names as the Temporal CLI spells them (`--search-attribute Name=Type`). */
export type SearchAttributeCliType = 'Keyword' | 'Text' | 'Int' | 'Double' | 'Bool' | 'Datetime' | 'KeywordList';

export const GUARD_SEARCH_ATTRIBUTES = {
  GuardStatus: 'Keyword',
  GuardAction: 'Keyword',
  GuardRequester: 'Keyword',
  GuardExpiresAt: 'Datetime',
  GuardLineageId: 'Keyword',
  GuardPersonasPending: 'KeywordList',
} as const satisfies Record<string, SearchAttributeCliType>;

export type GuardSearchAttributeName = keyof typeof GUARD_SEARCH_ATTRIBUTES;

const SDK_TYPES = {
  Keyword: SearchAttributeType.KEYWORD,
  Text: SearchAttributeType.TEXT,
  Int: SearchAttributeType.INT,
  Double: SearchAttributeType.DOUBLE,
  Bool: SearchAttributeType.BOOL,
  Datetime: SearchAttributeType.DATETIME,
  KeywordList: SearchAttributeType.KEYWORD_LIST,
} as const satisfies Record<SearchAttributeCliType, SearchAttributeType>;

type SdkType<T extends SearchAttributeCliType> = (typeof SDK_TYPES)[T];
type KeyFor<T extends SearchAttributeCliType> = ReturnType<typeof defineSearchAttributeKey<SdkType<T>>>;

/** Typed keys for `upsertSearchAttributes` / `typedSearchAttributes`, derived so they cannot drift from the list. */
export const GUARD_SEARCH_ATTRIBUTE_KEYS = Object.fromEntries(
  Object.entries(GUARD_SEARCH_ATTRIBUTES).map(([name, type]) => [
    name,
    defineSearchAttributeKey(name, SDK_TYPES[type]),
  ]),
) as { [K in GuardSearchAttributeName]: KeyFor<(typeof GUARD_SEARCH_ATTRIBUTES)[K]> };
