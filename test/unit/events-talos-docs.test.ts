import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { feedbackDocuments, feedbackKernelArgs } from '../../src/events/talos-docs.ts';

test('talos-docs: kernel args name the sink as host:port and the kernel log as a tcp URL', () => {
  assert.deepEqual(feedbackKernelArgs({ grpc: 4002, kmsg: 4003 }, '10.5.0.1'), ['talos.events.sink=10.5.0.1:4002', 'talos.logging.kernel=tcp://10.5.0.1:4003/']);
  assert.deepEqual(feedbackKernelArgs({ grpc: 9000, kmsg: 9001 }, '192.0.2.7'), ['talos.events.sink=192.0.2.7:9000', 'talos.logging.kernel=tcp://192.0.2.7:9001/']);
});

test('talos-docs: EventSinkConfig and KmsgLogConfig documents, joinable into a multi-document config', () => {
  const docs = feedbackDocuments({ grpc: 4002, kmsg: 4003 }, '10.5.0.1');
  assert.equal(docs.length, 2);
  const parsed = parseAllDocuments(docs.join('---\n')).map((d) => d.toJS() as unknown);
  assert.deepEqual(parsed, [
    { apiVersion: 'v1alpha1', kind: 'EventSinkConfig', endpoint: '10.5.0.1:4002' },
    { apiVersion: 'v1alpha1', kind: 'KmsgLogConfig', name: 'heph', url: 'tcp://10.5.0.1:4003/' },
  ]);
  for (const d of docs) assert.ok(d.endsWith('\n') && !d.includes('---'));
});

test('talos-docs: the documents are written once, and again when a port or the address changes', () => {
  const a = feedbackDocuments({ grpc: 4002, kmsg: 4003 }, '10.5.0.1');
  assert.equal(feedbackDocuments({ grpc: 4002, kmsg: 4003 }, '10.5.0.1'), a);
  assert.match(feedbackDocuments({ grpc: 5002, kmsg: 4003 }, '10.5.0.1')[0]!, /endpoint: 10\.5\.0\.1:5002/);
  assert.match(feedbackDocuments({ grpc: 5002, kmsg: 5003 }, '10.5.0.1')[1]!, /url: tcp:\/\/10\.5\.0\.1:5003\//);
  assert.match(feedbackDocuments({ grpc: 5002, kmsg: 5003 }, '10.5.0.9')[0]!, /endpoint: 10\.5\.0\.9:5002/);
});
