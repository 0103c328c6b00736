;;; run-eglot.el --- the Emacs tier with eglot (Debian's elpa-eglot) and its default settings  -*- lexical-binding: t -*-
(require 'eglot)
(require 'daytona-test-harness)

;; the one thing a user configures: which program serves these modes (one server, as eglot users write it)
(add-to-list 'eglot-server-programs `((python-mode sh-mode js-mode) . ,daytona-test-command))

;; the README's fix for Emacs 28's jsonrpc (1.0.14): the answer to a request eglot waits for leaves the messages
;; that came in the same read unread until the server writes again (a short run's result: until the next run)
(defun daytona-jsonrpc-filter (filter proc string)
  (let ((done nil))
    (unwind-protect (progn (funcall filter proc string) (setq done t))
      (unless done (run-at-time 0 nil #'jsonrpc--process-filter proc "")))))
(advice-add 'jsonrpc--process-filter :around #'daytona-jsonrpc-filter)

(defun daytona-test-eglot-start ()
  (unless (eglot-current-server)
    (call-interactively #'eglot))
  (daytona-test-wait "eglot connection" 60
                     (lambda () (let ((server (eglot-current-server)))
                                  (and server (jsonrpc-running-p server) (eglot--managed-mode))))))

(defun daytona-test-eglot-run ()
  ;; the code action of kind source.daytona.run at point (no region: "Run file in … sandbox")
  (eglot-code-actions (point-min) nil "source.daytona.run" t))

(daytona-test-run-scenario #'daytona-test-eglot-start #'daytona-test-eglot-run)
(let ((server (eglot-current-server)))
  (when server (eglot-shutdown server)))
(kill-emacs 0)
