import { counter, gauge, type Counter, type Gauge, type Registry } from '../metrics.ts';

export interface TftpMetrics {
  started: Counter;
  /** Ended transfers by outcome: done, client-ended, timeout, stopped. */
  transfers: Counter<'outcome'>;
  /** DATA payload bytes sent, retransmissions included. */
  bytes: Counter;
  /** DATA blocks (or OACKs) sent again after a timeout. */
  retransmits: Counter;
  /** Refused requests, dropped packets and failed transfers, by kind. */
  errors: Counter<'kind'>;
  active: Gauge;
  /** Times the data-plane worker died and was started again. */
  restarts: Counter;
}

export function tftpMetrics(r: Registry): TftpMetrics {
  return {
    started: counter(r, 'heph_tftp_transfers_started_total', 'TFTP read transfers started.'),
    transfers: counter(r, 'heph_tftp_transfers_total', 'TFTP read transfers ended, by outcome.', ['outcome']),
    bytes: counter(r, 'heph_tftp_bytes_sent_total', 'TFTP DATA payload bytes sent, retransmissions included.'),
    retransmits: counter(r, 'heph_tftp_retransmits_total', 'TFTP packets sent again after an ACK timeout.'),
    errors: counter(r, 'heph_tftp_errors_total', 'TFTP refused requests, dropped packets and failed transfers, by kind.', ['kind']),
    active: gauge(r, 'heph_tftp_active_transfers', 'TFTP transfers in progress.'),
    restarts: counter(r, 'heph_tftp_dataplane_restarts_total', 'Times the TFTP data-plane worker died and was started again.'),
  };
}
