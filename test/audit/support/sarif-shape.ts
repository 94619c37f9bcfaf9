// The SARIF 2.1.0 schema's rules for the objects `airlock audit` writes, checked by hand: for each
// object type its required and allowed properties (the schema closes every one of them with
// `additionalProperties: false`), enums and value types. The schema itself is not vendored; this
// holds the part of it the output reaches, so a property the schema does not know fails here.

interface Shape {
  required?: string[];
  /** Allowed properties, each with the shape of its value (a type name, or a check). */
  props: Record<string, string>;
  anyOf?: string[][];
}

const LEVELS = ['none', 'note', 'warning', 'error'];
const KINDS = ['notApplicable', 'pass', 'fail', 'review', 'open', 'informational'];

const SHAPES: Record<string, Shape> = {
  sarifLog: { required: ['version', 'runs'], props: { $schema: 'uri', version: 'version', runs: 'run[]', inlineExternalProperties: 'any[]', properties: 'propertyBag' } },
  run: {
    required: ['tool'],
    props: Object.fromEntries(
      [
        ['tool', 'tool'], ['results', 'result[]'], ['columnKind', 'columnKind'], ['properties', 'propertyBag'],
        ...['invocations', 'versionControlProvenance', 'artifacts', 'logicalLocations', 'graphs', 'redactionTokens', 'newlineSequences', 'threadFlowLocations', 'taxonomies', 'addresses', 'translations', 'policies', 'webRequests', 'webResponses'].map((k) => [k, 'any[]']),
        ...['conversion', 'language', 'originalUriBaseIds', 'automationDetails', 'runAggregates', 'baselineGuid', 'defaultEncoding', 'defaultSourceLanguage', 'externalPropertyFileReferences', 'specialLocations'].map((k) => [k, 'any']),
      ],
    ),
  },
  tool: { required: ['driver'], props: { driver: 'toolComponent', extensions: 'toolComponent[]', properties: 'propertyBag' } },
  toolComponent: {
    required: ['name'],
    props: {
      name: 'string', version: 'string', semanticVersion: 'string', informationUri: 'uri', downloadUri: 'uri', rules: 'reportingDescriptor[]',
      shortDescription: 'multiformatMessageString', fullDescription: 'multiformatMessageString', fullName: 'string', organization: 'string',
      product: 'string', productSuite: 'string', guid: 'string', dottedQuadFileVersion: 'string', releaseDateUtc: 'string',
      globalMessageStrings: 'any', notifications: 'any[]', taxa: 'any[]', locations: 'any[]', language: 'string', contents: 'any[]',
      isComprehensive: 'boolean', localizedDataSemanticVersion: 'string', minimumRequiredLocalizedDataSemanticVersion: 'string',
      associatedComponent: 'any', translationMetadata: 'any', supportedTaxonomies: 'any[]', properties: 'propertyBag',
    },
  },
  reportingDescriptor: {
    required: ['id'],
    props: {
      id: 'string', name: 'string', shortDescription: 'multiformatMessageString', fullDescription: 'multiformatMessageString',
      help: 'multiformatMessageString', helpUri: 'uri', defaultConfiguration: 'reportingConfiguration', messageStrings: 'any',
      deprecatedIds: 'any[]', guid: 'string', deprecatedGuids: 'any[]', deprecatedNames: 'any[]', relationships: 'any[]', properties: 'propertyBag',
    },
  },
  multiformatMessageString: { required: ['text'], props: { text: 'string', markdown: 'string', properties: 'propertyBag' } },
  reportingConfiguration: { props: { enabled: 'boolean', level: 'level', rank: 'number', parameters: 'propertyBag', properties: 'propertyBag' } },
  result: {
    required: ['message'],
    props: Object.fromEntries([
      ['ruleId', 'string'], ['ruleIndex', 'index'], ['kind', 'kind'], ['level', 'level'], ['message', 'message'], ['locations', 'location[]'],
      ['partialFingerprints', 'stringMap'], ['fingerprints', 'stringMap'], ['properties', 'propertyBag'], ['guid', 'string'], ['correlationGuid', 'string'],
      ['occurrenceCount', 'number'], ['rank', 'number'], ['baselineState', 'string'], ['hostedViewerUri', 'uri'],
      ...['stacks', 'codeFlows', 'graphs', 'graphTraversals', 'relatedLocations', 'suppressions', 'attachments', 'workItemUris', 'fixes', 'taxa'].map((k) => [k, 'any[]']),
      ...['rule', 'analysisTarget', 'provenance', 'webRequest', 'webResponse'].map((k) => [k, 'any']),
    ]),
  },
  message: { props: { text: 'string', markdown: 'string', id: 'string', arguments: 'any[]', properties: 'propertyBag' }, anyOf: [['text'], ['id']] },
  location: { props: { id: 'index', physicalLocation: 'physicalLocation', logicalLocations: 'logicalLocation[]', message: 'message', annotations: 'any[]', relationships: 'any[]', properties: 'propertyBag' } },
  physicalLocation: { props: { address: 'any', artifactLocation: 'artifactLocation', region: 'region', contextRegion: 'region', properties: 'propertyBag' }, anyOf: [['address'], ['artifactLocation']] },
  artifactLocation: { props: { uri: 'uriReference', uriBaseId: 'string', index: 'index', description: 'message', properties: 'propertyBag' } },
  region: {
    props: {
      startLine: 'line', startColumn: 'line', endLine: 'line', endColumn: 'line', charOffset: 'index', charLength: 'index', byteOffset: 'index', byteLength: 'index',
      snippet: 'any', message: 'message', sourceLanguage: 'string', properties: 'propertyBag',
    },
  },
  logicalLocation: { props: { name: 'string', index: 'index', fullyQualifiedName: 'string', decoratedName: 'string', parentIndex: 'index', kind: 'string', properties: 'propertyBag' } },
};

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function check(type: string, v: unknown, at: string, errors: string[]): void {
  if (type.endsWith('[]')) {
    if (!Array.isArray(v)) errors.push(`${at}: expected an array`);
    else v.forEach((item, i) => check(type.slice(0, -2), item, `${at}[${i}]`, errors));
    return;
  }
  const fail = (what: string): void => void errors.push(`${at}: expected ${what}, got ${JSON.stringify(v)?.slice(0, 80)}`);
  switch (type) {
    case 'any':
      return;
    case 'string':
      if (typeof v !== 'string') fail('a string');
      return;
    case 'boolean':
      if (typeof v !== 'boolean') fail('a boolean');
      return;
    case 'number':
      if (typeof v !== 'number') fail('a number');
      return;
    case 'index':
      if (!Number.isInteger(v) || (v as number) < -1) fail('an integer >= -1');
      return;
    case 'line':
      if (!Number.isInteger(v) || (v as number) < 1) fail('an integer >= 1');
      return;
    case 'uri':
      if (typeof v !== 'string' || !/^[a-z][a-z0-9+.-]*:[^\s]+$/i.test(v)) fail('an absolute URI');
      return;
    case 'uriReference':
      if (typeof v !== 'string' || /\s|\\/.test(v)) fail('a URI reference');
      return;
    case 'version':
      if (v !== '2.1.0') fail('"2.1.0"');
      return;
    case 'level':
      if (!LEVELS.includes(v as string)) fail(LEVELS.join('|'));
      return;
    case 'kind':
      if (!KINDS.includes(v as string)) fail(KINDS.join('|'));
      return;
    case 'columnKind':
      if (v !== 'utf16CodeUnits' && v !== 'unicodeCodePoints') fail('utf16CodeUnits|unicodeCodePoints');
      return;
    case 'stringMap':
      if (!isObj(v) || !Object.values(v).every((x) => typeof x === 'string')) fail('an object of strings');
      return;
    case 'propertyBag':
      if (!isObj(v)) fail('an object');
      else if ('tags' in v && (!Array.isArray(v.tags) || !v.tags.every((t) => typeof t === 'string') || new Set(v.tags).size !== v.tags.length)) fail('unique string tags');
      return;
  }
  const shape = SHAPES[type];
  if (!shape) throw new Error(`no shape ${type}`);
  if (!isObj(v)) return fail(`a ${type} object`);
  for (const r of shape.required ?? []) if (!(r in v)) errors.push(`${at}: ${type} lacks required "${r}"`);
  if (shape.anyOf && !shape.anyOf.some((set) => set.every((k) => k in v))) errors.push(`${at}: ${type} needs one of ${shape.anyOf.map((s) => s.join('+')).join(', ')}`);
  for (const [k, val] of Object.entries(v)) {
    const t = shape.props[k];
    if (t === undefined) errors.push(`${at}: ${type} does not allow "${k}"`);
    else check(t, val, `${at}.${k}`, errors);
  }
}

/** Every way `log` breaks the SARIF 2.1.0 schema (in the parts checked here); empty when it is valid. */
export function sarifErrors(log: unknown): string[] {
  const errors: string[] = [];
  check('sarifLog', log, '$', errors);
  return errors;
}
