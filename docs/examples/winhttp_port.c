/*
 * winhttp_port.c - a WinHTTP WebSocket client ported to wshandle, step by step.
 *
 * The WinHTTP program this replaces follows Microsoft's WinhttpWebsocket sample: open a
 * session, a connection and a request, mark the request for the upgrade, send it, read the
 * response, complete the upgrade, send one binary message, read the echo, close, read the
 * server's close status, and close four handles. Each step below names the WinHTTP call it
 * replaces. Differences that matter when porting:
 *
 *   - one URL and one handle instead of session, connection and request handles;
 *   - every ws_* function returns its ws_error (no BOOL + GetLastError), and
 *     ws_last_error_message() tells this thread why the last call failed;
 *   - strings are UTF-8 `char`, not UTF-16 `WCHAR`;
 *   - the numbers are WinHTTP's: WS_BUFFER_*, WS_CLOSE_STATUS_*, the WS_ERROR_* values and
 *     the first five WS_OPTION_* values are those of winhttp.h and winerror.h.
 *
 * Usage: winhttp_port ws://host:port/path   (an echo server)
 */
#include <stdio.h>
#include <string.h>

#include "wshandle.h"

int main(int argc, char **argv)
{
    ws_error dwError = WS_OK;          /* DWORD dwError = ERROR_SUCCESS; */
    ws_handle hWebSocket = 0;          /* HINTERNET hSession, hConnection, hRequest, hWebSocket */
    unsigned char rgbCloseReason[WS_MAX_CLOSE_REASON_LENGTH]; /* 123, as WinHTTP's maximum */
    unsigned char rgbBuffer[1024];
    unsigned char *pbCurrent = rgbBuffer;
    size_t cbLeft = sizeof rgbBuffer;  /* DWORD dwBufferLength */
    size_t cbTransferred = 0;          /* DWORD dwBytesTransferred */
    size_t cbCloseReason = 0;          /* DWORD dwCloseReasonLength */
    uint16_t usStatus = 0;             /* USHORT usStatus */
    uint32_t eBufferType = 0;          /* WINHTTP_WEB_SOCKET_BUFFER_TYPE eBufferType */
    const char message[] = "Hello world"; /* UTF-8; WinHTTP programs often send WCHARs */

    if (argc != 2) {
        fprintf(stderr, "usage: %s ws://host:port/path\n", argv[0]);
        return 2;
    }

    /* WinHttpOpen + WinHttpConnect + WinHttpOpenRequest(L"GET", path) +
     * WinHttpSetOption(WINHTTP_OPTION_UPGRADE_TO_WEB_SOCKET): one call, one handle, no I/O. */
    dwError = ws_open(argv[1], &hWebSocket);
    if (dwError != WS_OK)
        goto quit;

    /* WinHttpSendRequest + WinHttpReceiveResponse + WinHttpWebSocketCompleteUpgrade: one
     * blocking call. A response other than 101 fails it with WS_ERROR_INVALID_SERVER_RESPONSE;
     * WS_OPTION_HTTP_STATUS then tells the status (WinHttpQueryHeaders(WINHTTP_QUERY_STATUS_CODE)). */
    dwError = ws_connect(hWebSocket);
    if (dwError != WS_OK)
        goto quit;
    printf("Successfully upgraded to websocket protocol\n");

    /* WinHttpWebSocketSend(h, WINHTTP_WEB_SOCKET_BINARY_MESSAGE_BUFFER_TYPE, p, n) */
    dwError = ws_send(hWebSocket, WS_BUFFER_BINARY_MESSAGE, message, strlen(message));
    if (dwError != WS_OK)
        goto quit;
    printf("Sent message to the server: '%s'\n", message);

    /* WinHttpWebSocketReceive in a loop: the same pieces, the same buffer types. */
    do {
        if (cbLeft == 0) {
            dwError = WS_ERROR_NOT_ENOUGH_MEMORY; /* ERROR_NOT_ENOUGH_MEMORY, as the original */
            goto quit;
        }
        dwError = ws_receive(hWebSocket, pbCurrent, cbLeft, &cbTransferred, &eBufferType);
        if (dwError != WS_OK)
            goto quit;
        pbCurrent += cbTransferred;
        cbLeft -= cbTransferred;
    } while (eBufferType == WS_BUFFER_BINARY_FRAGMENT);

    if (eBufferType != WS_BUFFER_BINARY_MESSAGE) {
        printf("Unexpected buffer type %u\n", (unsigned)eBufferType);
        dwError = WS_ERROR_INVALID_PARAMETER;
        goto quit;
    }
    printf("Received message from the server: '%.*s'\n", (int)(sizeof rgbBuffer - cbLeft),
           (const char *)rgbBuffer);

    /* WinHttpWebSocketClose(h, WINHTTP_WEB_SOCKET_SUCCESS_CLOSE_STATUS, NULL, 0): the same
     * full close under WS_OPTION_CLOSE_TIMEOUT (WINHTTP_OPTION_WEB_SOCKET_CLOSE_TIMEOUT, 115). */
    dwError = ws_close(hWebSocket, WS_CLOSE_STATUS_SUCCESS, NULL, 0);
    if (dwError != WS_OK)
        goto quit;

    /* WinHttpWebSocketQueryCloseStatus: same parameters; size_t instead of DWORD. */
    dwError = ws_query_close_status(hWebSocket, &usStatus, rgbCloseReason, sizeof rgbCloseReason,
                                    &cbCloseReason);
    if (dwError != WS_OK)
        goto quit;
    printf("The server closed the connection with status code: '%u' and reason: '%.*s'\n",
           (unsigned)usStatus, (int)cbCloseReason, (const char *)rgbCloseReason);

quit:
    if (dwError != WS_OK) {
        char detail[256]; /* GetLastError() gives a number; this also gives the reason */
        ws_last_error_message(detail, sizeof detail);
        printf("Application failed with error: %u %s: %s\n", (unsigned)dwError,
               ws_error_name(dwError), detail);
    }
    /* WinHttpCloseHandle on the request, WebSocket, connection and session handles. */
    if (hWebSocket != 0)
        ws_close_handle(hWebSocket);
    return dwError == WS_OK ? 0 : 1;
}
