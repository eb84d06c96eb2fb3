// JSON schemas shared by several routes (and by the OpenAPI document, which is built from the route schemas).

export const errorSchema = {
  type: 'object',
  required: ['error'],
  properties: { error: { type: 'object', required: ['code', 'message'], properties: { code: { type: 'string' }, message: { type: 'string' } } } },
} as const;

const nullableString = { type: ['string', 'null'] } as const;

export const machineSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    uuid: nullableString,
    serial: nullableString,
    hostname: nullableString,
    arch: nullableString,
    platform: nullableString,
    manufacturer: nullableString,
    product: nullableString,
    vendorClass: nullableString,
    state: { type: 'string' },
    stateReason: nullableString,
    acceptance: { type: 'string', enum: ['pending', 'accepted', 'rejected'] },
    profile: nullableString,
    labels: { type: 'object', additionalProperties: { type: 'string' } },
    reprovision: { type: 'boolean' },
    ip: nullableString,
    macs: { type: 'array', items: { type: 'string' } },
    firstSeen: { type: 'string', format: 'date-time' },
    lastSeen: { type: 'string', format: 'date-time' },
    updatedAt: { type: 'string', format: 'date-time' },
  },
} as const;

export const eventSchema = {
  type: 'object',
  properties: {
    id: { type: ['integer', 'null'] },
    machineId: nullableString,
    at: { type: 'string', format: 'date-time' },
    kind: { type: 'string' },
    source: { type: 'string' },
    ip: nullableString,
    message: { type: 'string' },
    data: { type: 'object', additionalProperties: true },
  },
} as const;

export const pageQuery = {
  limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 },
  offset: { type: 'integer', minimum: 0, maximum: 10_000_000, default: 0 },
} as const;

export const NAME = '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$';
export const nameSchema = { type: 'string', pattern: NAME, description: 'lowercase letters, digits and dashes, 1-63 characters' } as const;
export const LABEL_KEY = '^[A-Za-z0-9]([A-Za-z0-9._/-]{0,61}[A-Za-z0-9])?$';
export const labelsSchema = {
  type: 'object',
  propertyNames: { pattern: LABEL_KEY },
  additionalProperties: { type: 'string', maxLength: 253 },
  maxProperties: 64,
} as const;

export const idParams = { type: 'object', required: ['id'], properties: { id: { type: 'string', maxLength: 64 } }, additionalProperties: false } as const;
export const nameParams = { type: 'object', required: ['name'], properties: { name: { type: 'string', maxLength: 63 } }, additionalProperties: false } as const;
