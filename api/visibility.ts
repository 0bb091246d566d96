import { z } from 'zod';

/**
 * A value that may be spliced into a Temporal visibility query between single quotes: no quotes, spaces or
 * operators, so a filter can never change the query's shape.
 */
export const queryLiteral = z
  .string()
  .min(1)
  .max(200)
  .regex(/^[A-Za-z0-9_.:-]+$/, 'only letters, digits and _ . : - are allowed');

/** `Name = 'value'` clauses joined with AND; values must have passed `queryLiteral`. */
export function visibilityQuery(clauses: Record<string, string | undefined>): string {
  return Object.entries(clauses)
    .filter((entry): entry is [string, string] => entry[1] !== undefined)
    .map(([name, value]) => `${name} = '${value}'`)
    .join(' AND ');
}
